/* The C ABI of aha tool and environment plugins, version 1. A plugin is a shared library
 * exporting one function, `aha_tool_plugin`, that returns a static table of function pointers.
 * Plain C, so that a plugin needs nothing but this header.
 *
 * Lifetime: create() once per run (from the tool's "params"), open() once per episode (a
 * session: it may keep state across the episode's calls), close() when the episode ends,
 * destroy() at the end of the run. Sessions of different episodes run concurrently on the
 * host's tool threads; the calls of one session come one at a time, in order.
 *
 * Compatibility: the host refuses a table whose abi_version differs from its own or whose
 * struct_size is smaller than the host's sizeof(AhaToolPlugin). New fields are only appended,
 * with a new version number. */
#ifndef AHA_TOOLS_TOOL_PLUGIN_ABI_H
#define AHA_TOOLS_TOOL_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHA_TOOL_ABI_VERSION 1u
#define AHA_TOOL_PLUGIN_ENTRY "aha_tool_plugin"

/* What a call or a reset returns. */
#define AHA_TOOL_OK 0    /* output for the model */
#define AHA_TOOL_ERROR 1 /* an error the model sees (a bad argument, a failed command) */
#define AHA_TOOL_FATAL 2 /* the tool is broken: the episode ends with reward 0 */

typedef struct AhaToolPlugin {
  uint32_t abi_version; /* AHA_TOOL_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(AhaToolPlugin) as the plugin saw it */
  const char* name;     /* for messages; the run names the tool in rollout.tools */
  int environment;      /* nonzero: an environment (reset, then steps with rewards and done) */

  /* An instance from its parameters (a JSON object as UTF-8 text); NULL on failure, with a
   * NUL-terminated message of at most err_size bytes in err. */
  void* (*create)(const char* params_json, char* err, size_t err_size);
  void (*destroy)(void* instance);

  /* A session for one episode whose prompt is `prompt`; NULL on failure (message in err). */
  void* (*open)(void* instance, const char* prompt, char* err, size_t err_size);
  void (*close)(void* session);

  /* Environments: the episode's first observation (NUL-terminated, at most output_size bytes).
   * Returns AHA_TOOL_OK, AHA_TOOL_ERROR or AHA_TOOL_FATAL. May be NULL for plain tools. */
  int (*reset)(void* session, char* output, size_t output_size);

  /* One call (a tool's input, an environment's action): writes the observation, and for an
   * environment may set *reward (left NaN: no reward) and *done (nonzero ends the episode). */
  int (*step)(void* session, const char* input, size_t input_len, char* output,
              size_t output_size, double* reward, int* done);
} AhaToolPlugin;

/* The exported entry point. Returns NULL when the plugin cannot serve host_abi_version. */
typedef const AhaToolPlugin* (*AhaToolPluginEntry)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* AHA_TOOLS_TOOL_PLUGIN_ABI_H */
