/* The C ABI of aha reward plugins, version 1. A plugin is a shared library exporting one
 * function, `aha_reward_plugin`, that returns a static table of function pointers. Plain C so
 * that a plugin needs nothing but this header (no aha library, no C++ ABI coupling).
 *
 * Compatibility: the host refuses a table whose abi_version differs from its own or whose
 * struct_size is smaller than the host's sizeof(AhaRewardPlugin). New fields are only ever
 * appended, with a new version number. */
#ifndef AHA_REWARDS_PLUGIN_ABI_H
#define AHA_REWARDS_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define AHA_REWARD_ABI_VERSION 1u
#define AHA_REWARD_PLUGIN_ENTRY "aha_reward_plugin"

typedef struct AhaRewardPlugin {
  uint32_t abi_version; /* AHA_REWARD_ABI_VERSION the plugin was built against */
  uint32_t struct_size; /* sizeof(AhaRewardPlugin) as the plugin saw it */
  const char* name;     /* short name, for messages */

  /* Creates an instance from its parameters (a JSON object as UTF-8 text). Returns NULL on
   * failure after writing a NUL-terminated message of at most err_size bytes into err. */
  void* (*create)(const char* params_json, char* err, size_t err_size);

  /* Destroys an instance made by create. */
  void (*destroy)(void* instance);

  /* Scores one sample, given as a JSON object {"prompt": str, "completion": str, "row": {...},
   * "n_completion_tokens": int}. On success returns 0 and sets *score; it may write a JSON
   * object of details (NUL-terminated, at most details_size bytes) into details, or leave it
   * empty. On failure returns non-zero with a NUL-terminated reason in details: the host scores
   * the sample 0 with that reason. Called concurrently from several threads on one instance. */
  int (*score)(void* instance, const char* sample_json, size_t sample_len, double* score,
               char* details, size_t details_size);
} AhaRewardPlugin;

/* The exported entry point. Returns NULL when the plugin cannot serve host_abi_version. */
typedef const AhaRewardPlugin* (*AhaRewardPluginEntry)(uint32_t host_abi_version);

#ifdef __cplusplus
}
#endif

#endif /* AHA_REWARDS_PLUGIN_ABI_H */
