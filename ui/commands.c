/* commands.c: the command table, help, set and quit, and argument helpers. */
#include "commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"

static const char *const new_options[] = {"width=", "rho=", "damping=", "groups=", "roll=",
                                          "blocks=", "in_ch=", "classes=", "channels=",
                                          "mels=", "seed=", NULL};
static const char *const set_options[] = {"threads=", "seed=", NULL};
static const char *const save_options[] = {"checkpoint=", NULL};
static const char *const synth_options[] = {"out=", "clips=", "seconds=", "seed=", "rate=", NULL};
static const char *const data_options[] = {"default", "export", "split=", "norm=", NULL};
static const char *const spec_options[] = {"preset=", "csv=", "style=", "width=", "rows=", "range=", NULL};

const struct command commands[] = {
    {"new", "ARCH [key=value ...]", "create a model: cpresnet, sepnet or cnn10",
     "Options by architecture (defaults in brackets):\n"
     "  cpresnet  width [128] rho [5] damping [0] groups [1] roll [0] blocks [4,4,4]\n"
     "            in_ch [1] classes [10]\n"
     "  sepnet    channels [64,128,128,128] mels [256] in_ch [1] classes [10]\n"
     "  cnn10     width [1.0] mels [64] in_ch [1] classes [10]\n"
     "  seed=N draws the initial weights from seed N (default: the session seed).\n"
     "Example: new cpresnet width=32 rho=5 damping=0.1",
     cmd_new, new_options},
    {"load", "PATH", "load a model or checkpoint (.safetensors)",
     "Reads a model written by basin or by PyTorch (shared/peers/basin_ref.py); the file\n"
     "is checked completely before anything is replaced.",
     cmd_load, NULL},
    {"save", "PATH [checkpoint=1]", "save the model (.safetensors, atomic)",
     "checkpoint=1 also stores optimiser moments and pruning masks.", cmd_save, save_options},
    {"info", "[F T]", "per-layer table: shapes, parameters, MACs, receptive field, sizes",
     "F and T give the input size (mel bins, frames); the default is the model's 10-second\n"
     "input (256 x 431 for cpresnet).",
     cmd_info, NULL},
    {"forward", "IN OUT", "run the model on IN's 'x' (N, C, F, T); write 'logits' to OUT",
     "The same contract as shared/peers/basin_ref.py forward, in eval mode: use it to check\n"
     "basin against PyTorch on identical inputs.",
     cmd_forward, NULL},
    {"clip", "PATH", "load an audio clip: rate, channels, duration, level",
     "Any format libsndfile reads (WAV, FLAC, Ogg/Vorbis, Opus, MP3, AIFF...). Damaged files\n"
     "are refused with the reason; the clip becomes the default for spec.",
     cmd_clip, NULL},
    {"preset", "[NAME]", "show the front ends, or choose the session's",
     "Presets: demo (default), cpjku, sp4asc, panns16k, panns32k. A loaded model keeps the\n"
     "front end it was trained on; new models take the chosen preset.",
     cmd_preset, NULL},
    {"spec", "[PATH] [preset=NAME] [--csv FILE] [style=ascii|color]", "log-mel spectrogram in the terminal",
     "Draws the clip's features (low frequencies at the bottom) with colour half-blocks on a\n"
     "256-colour UTF-8 terminal, an ASCII ramp otherwise. --csv FILE (or csv=FILE) writes the\n"
     "matrix: a header of frame times, then one row per mel bin with its centre frequency.\n"
     "width=N rows=N set the size; range=DB the dynamic range shown (80).",
     cmd_spec, spec_options},
    {"synth", "[out=DIR] [clips=N] [seconds=S] [seed=N]", "write a synthetic DCASE-layout scene data set",
     "Procedural soundscapes (8+ scene classes, a reference device a and simulated devices\n"
     "b, c, s1..s6 that colour the same scenes; s4..s6 never appear in training),\n"
     "deterministic by seed. Without out= it goes to the cache folder (reused if present).",
     cmd_synth, synth_options},
    {"data", "[PATH|default] | export PATH [split=..] [norm=..]", "open a data set and summarise it; export features",
     "PATH is a DCASE-layout folder (meta.csv, evaluation_setup/) or a CSV with filename,label\n"
     "[,device,split,fold]; `default` (or no PATH before any data set is open) is the\n"
     "embedded synthetic set, generated on first use.\n"
     "data export writes the split's features as x (N, C, F, T), labels y and device (int64)\n"
     "with the front end and label names in the metadata, through the feature cache.\n"
     "split=train|evaluate|test|all (train); norm=model|train|none (model's statistics if any).",
     cmd_data, data_options},
    {"cache", "[clear]", "show the feature and data-set cache: where, how big, its cap",
     "cache clear empties it.", cmd_cache, NULL},
    {"set", "key=value ...", "settings: threads=N, seed=N", "threads=0 uses every core.",
     cmd_set, set_options},
    {"help", "[COMMAND]", "list commands, or explain one", "", cmd_help, NULL},
    {"quit", "", "leave basin (also: exit)", "", cmd_quit, NULL},
    {"exit", "", "leave basin", "", cmd_quit, NULL},
};
const int n_commands = (int)(sizeof commands / sizeof commands[0]);

const struct command *command_find(const char *name)
{
    for (int i = 0; i < n_commands; i++)
        if (!strcmp(commands[i].name, name)) return &commands[i];
    return NULL;
}

char *arg_split(char *arg)
{
    char *eq = strchr(arg, '=');
    if (!eq) return NULL;
    *eq = 0;
    return eq + 1;
}

int arg_int(struct app *a, const char *key, const char *value, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(value, &end, 10);
    if (!*value || *end || errno)
        return app_fail(a, STATUS_INVALID, "%s=%s: not an integer", key, value);
    if (v < lo || v > hi)
        return app_fail(a, STATUS_INVALID, "%s=%ld: out of range %ld..%ld", key, v, lo, hi);
    *out = v;
    return STATUS_OK;
}

int cmd_help(struct app *a, int argc, char **argv)
{
    if (argc > 2) return app_fail(a, STATUS_INVALID, "help: one command at most");
    if (argc == 2) {
        const struct command *c = command_find(argv[1]);
        if (!c) return app_fail(a, STATUS_INVALID, "help: unknown command '%s'", argv[1]);
        app_out(a, "%s %s\n  %s\n", c->name, c->usage, c->summary);
        if (c->help && *c->help) app_out(a, "%s\n", c->help);
        return STATUS_OK;
    }
    app_out(a, "commands (help COMMAND for details):\n");
    for (int i = 0; i < n_commands; i++) {
        char head[64];
        snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].usage);
        app_out(a, "  %-30s %s\n", head, commands[i].summary);
    }
    return STATUS_OK;
}

int cmd_set(struct app *a, int argc, char **argv)
{
    if (argc < 2) {
        app_out(a, "threads=%d seed=%llu\n", threads_get(), (unsigned long long)a->seed);
        return STATUS_OK;
    }
    for (int i = 1; i < argc; i++) {
        char *v = arg_split(argv[i]);
        long x;
        if (!v) return app_fail(a, STATUS_INVALID, "set: expected key=value, got '%s'", argv[i]);
        if (!strcmp(argv[i], "threads")) {
            if (arg_int(a, "threads", v, 0, 256, &x)) return STATUS_INVALID;
            threads_set((int)x);
        } else if (!strcmp(argv[i], "seed")) {
            if (arg_int(a, "seed", v, 0, 0x7fffffffffffffffL, &x)) return STATUS_INVALID;
            a->seed = (uint64_t)x;
        } else {
            return app_fail(a, STATUS_INVALID, "set: unknown setting '%s' (threads, seed)", argv[i]);
        }
    }
    return STATUS_OK;
}

int cmd_quit(struct app *a, int argc, char **argv)
{
    (void)argv;
    if (argc > 1) return app_fail(a, STATUS_INVALID, "%s takes no arguments", argv[0]);
    a->quit = 1;
    return STATUS_OK;
}
