/* An example aha environment plugin in plain C: a number-guessing game. The secret is the last
 * digit of the episode's prompt; each action is a guess, answered "higher" or "lower" with a
 * step reward of `step_reward` (params, default -0.1), and the right guess ends the episode
 * with reward 1. An action "hang" sleeps (to show the host's time limit), "boom" is fatal.
 *
 *   cmake -S examples/tool_plugin -B build-env && cmake --build build-env
 *   "rollout": {"tools": [{"name": "game", "plugin": "build-env/libaha_guess_env.so",
 *                          "params": {"step_reward": -0.1}}],
 *               "tool_stop": {"open": "<guess>", "close": "</guess>", "tool": "game"}} */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "aha/tools/tool_plugin_abi.h"

typedef struct {
  double step_reward;
} Game;

typedef struct {
  const Game* game;
  int secret;
  int guesses;
} Episode;

static void* create(const char* params_json, char* err, size_t err_size) {
  Game* g = (Game*)calloc(1, sizeof(Game));
  const char* key = strstr(params_json, "\"step_reward\"");
  g->step_reward = -0.1;
  if (key != NULL) {
    const char* colon = strchr(key, ':');
    char* end = NULL;
    g->step_reward = colon != NULL ? strtod(colon + 1, &end) : NAN;
    if (colon == NULL || end == colon + 1 || !isfinite(g->step_reward)) {
      snprintf(err, err_size, "step_reward must be a number");
      free(g);
      return NULL;
    }
  }
  return g;
}

static void destroy(void* instance) { free(instance); }

static void* open_episode(void* instance, const char* prompt, char* err, size_t err_size) {
  size_t n = strlen(prompt);
  if (n == 0 || prompt[n - 1] < '0' || prompt[n - 1] > '9') {
    snprintf(err, err_size, "the prompt must end with the secret digit");
    return NULL;
  }
  Episode* e = (Episode*)calloc(1, sizeof(Episode));
  e->game = (const Game*)instance;
  e->secret = prompt[n - 1] - '0';
  return e;
}

static void close_episode(void* session) { free(session); }

static int reset(void* session, char* output, size_t output_size) {
  (void)session;
  snprintf(output, output_size, "I chose a digit 0-9. Guess it.\n");
  return AHA_TOOL_OK;
}

static int step(void* session, const char* input, size_t input_len, char* output,
                size_t output_size, double* reward, int* done) {
  Episode* e = (Episode*)session;
  if (input_len == 4 && memcmp(input, "hang", 4) == 0) {
    sleep(30);
  }
  if (input_len == 4 && memcmp(input, "boom", 4) == 0) {
    snprintf(output, output_size, "the game crashed");
    return AHA_TOOL_FATAL;
  }
  if (input_len != 1 || input[0] < '0' || input[0] > '9') {
    snprintf(output, output_size, "a guess is one digit");
    return AHA_TOOL_ERROR;
  }
  const int g = input[0] - '0';
  ++e->guesses;
  if (g == e->secret) {
    snprintf(output, output_size, "right after %d guesses", e->guesses);
    *reward = 1.0;
    *done = 1;
  } else {
    snprintf(output, output_size, g < e->secret ? "higher" : "lower");
    *reward = e->game->step_reward;
  }
  return AHA_TOOL_OK;
}

static const AhaToolPlugin kTable = {
    AHA_TOOL_ABI_VERSION, sizeof(AhaToolPlugin), "guess", 1, create, destroy, open_episode,
    close_episode,        reset,                 step};

__attribute__((visibility("default"))) const AhaToolPlugin* aha_tool_plugin(uint32_t host_abi_version) {
  return host_abi_version == AHA_TOOL_ABI_VERSION ? &kTable : NULL;
}
