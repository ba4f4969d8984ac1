/* commands.c: the command table, help, set and quit, and argument helpers. */
#include "commands.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "basin/core/status.h"
#include "basin/core/threads.h"
#include "basin/dsp/frontend.h"
#include "basin/model/model.h"
#include "views.h"

static const char *const new_options[] = {"width=", "rho=", "damping=", "groups=", "roll=",
                                          "blocks=", "in_ch=", "classes=", "channels=",
                                          "mels=", "seed=", NULL};
static const char *const set_options[] = {"threads=", "seed=", NULL};
static const char *const save_options[] = {"checkpoint=", NULL};
static const char *const synth_options[] = {"out=", "clips=", "seconds=", "seed=", "rate=", "scene=",
                                            "device=", NULL};
static const char *const data_options[] = {"default", "export", "seed=", "evaluate=", "fold=",
                                           "split=", "norm=", NULL};
static const char *const cache_options[] = {"clear", "cap=", NULL};
static const char *const spec_options[] = {"preset=", "csv=", "style=", "width=", "rows=", "range=", NULL};
static const char *const eval_options[] = {"split=", "by=", "--csv", NULL};
static const char *const predict_options[] = {"tta=", "top=", "--csv", "window=", "hop=", "seed=", NULL};
static const char *const train_options[] = {"epochs=", "steps=", "recipe=", "opt=", "lr=", "wd=", "momentum=",
                                            "nesterov=", "beta1=", "beta2=", "eps=", "bs=", "drop_last=", "sched=",
                                            "lr_min=", "decay=", "step_every=", "step_gamma=", "warmup=", "loss=",
                                            "gamma=", "mixup=", "mixup_mode=", "specaug=", "roll=", "gain=", "swa=",
                                            "swa_every=", "clip=", "seed=", "out=", "eval=", "norm=", NULL};
static const char *const resume_options[] = {"eval=", NULL};

/* ---- completion slots ------------------------------------------------------------------ */

static int add(const char **out, int n, int max, const char *c, const char *text)
{
    if (n < max && !strncmp(c, text, strlen(text))) out[n++] = c;
    return n;
}

/* `key=value` words: the values a key takes. */
static int complete_key_values(const char *text, const char **out, int max, char *buf, int nb)
{
    static const struct {
        const char *key, *values[8];
    } table[] = {
        {"split=", {"train", "evaluate", "test", "all", NULL}},
        {"by=", {"device", "class", NULL}},
        {"opt=", {"sgd", "adam", "adamw", NULL}},
        {"sched=", {"constant", "linear", "cosine", "step", NULL}},
        {"loss=", {"ce", "focal", NULL}},
        {"recipe=", {"none", "cpjku", "sp4asc", NULL}},
        {"norm=", {"model", "train", "none", NULL}},
        {"mixup_mode=", {"sample", "batch", NULL}},
        {"specaug=", {"on", "off", NULL}},
        {"style=", {"ascii", "color", NULL}},
    };
    int n = 0, used = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t k = strlen(table[i].key);
        if (strncmp(text, table[i].key, k)) continue;
        for (int v = 0; table[i].values[v] && n < max; v++) {
            int w = snprintf(buf + used, (size_t)(nb - used), "%s%s", table[i].key, table[i].values[v]);
            if (w < 0 || used + w + 1 > nb) break;
            n = add(out, n, max, buf + used, text);
            used += w + 1;
        }
    }
    if (!strncmp(text, "preset=", 7))
        for (const char *const *p = frontend_preset_names(); *p && n < max; p++) {
            int w = snprintf(buf + used, (size_t)(nb - used), "preset=%s", *p);
            if (w < 0 || used + w + 1 > nb) break;
            n = add(out, n, max, buf + used, text);
            used += w + 1;
        }
    return n;
}

static int complete_values(const char *text, int word, char *const *words, const char **out, int max,
                           char *buf, int nb)
{
    (void)word, (void)words;
    return complete_key_values(text, out, max, buf, nb);
}

/* new ARCH key=...: architectures, then that architecture's options. */
static int complete_new(const char *text, int word, char *const *words, const char **out, int max,
                        char *buf, int nb)
{
    int n = 0;
    enum arch a;
    if (word == 1) {
        for (int k = 0; k < ARCH_COUNT; k++) n = add(out, n, max, arch_name((enum arch)k), text);
        return n;
    }
    if (arch_parse(words[1], &a)) return 0;
    int used = 0;
    for (const char *const *p = model_config_keys(a); *p && n < max; p++) {
        int w = snprintf(buf + used, (size_t)(nb - used), "%s=", *p);
        if (w < 0 || used + w + 1 > nb) break;
        n = add(out, n, max, buf + used, text);
        used += w + 1;
    }
    return add(out, n, max, "seed=", text);
}

static int complete_data(const char *text, int word, char *const *words, const char **out, int max,
                         char *buf, int nb)
{
    (void)buf, (void)nb;
    if (word == 1) {
        int n = add(out, 0, max, "default", text);
        n = add(out, n, max, "export", text);
        return strchr(text, '=') || !n ? 0 : n; /* also file names: 0 lets readline add them */
    }
    return word >= 2 && !strcmp(words[1], "export") ? complete_key_values(text, out, max, buf, nb) : 0;
}

static int complete_view(const char *text, int word, char *const *words, const char **out, int max,
                         char *buf, int nb)
{
    (void)words, (void)buf, (void)nb;
    int n = 0;
    for (int v = 0; word == 1 && v < VIEW_COUNT; v++) n = add(out, n, max, view_name((enum view_kind)v), text);
    return n;
}

static int complete_preset(const char *text, int word, char *const *words, const char **out, int max,
                           char *buf, int nb)
{
    (void)words, (void)buf, (void)nb;
    int n = 0;
    for (const char *const *p = frontend_preset_names(); word == 1 && *p; p++) n = add(out, n, max, *p, text);
    return n;
}

static int complete_help(const char *text, int word, char *const *words, const char **out, int max,
                         char *buf, int nb)
{
    (void)words, (void)buf, (void)nb;
    int n = 0;
    for (int i = 0; word == 1 && i < n_commands; i++) n = add(out, n, max, commands[i].name, text);
    return n;
}

const struct command commands[] = {
    {"new", "ARCH [key=value ...]", "create a model: cpresnet, sepnet or cnn10",
     "Options by architecture (defaults in brackets):\n"
     "  cpresnet  width [128] rho [5] damping [0] groups [1] roll [0] blocks [4,4,4]\n"
     "            in_ch [1] classes [10]\n"
     "  sepnet    channels [64,128,128,128] mels [256] in_ch [1] classes [10]\n"
     "  cnn10     width [1.0] mels [64] in_ch [1] classes [10]\n"
     "  seed=N draws the initial weights from seed N (default: the session seed).\n"
     "Example: new cpresnet width=32 rho=5 damping=0.1",
     cmd_new, new_options, CMD_CHANGES_MODEL, complete_new},
    {"load", "PATH", "load a model or checkpoint (.safetensors)",
     "Reads a model written by basin or by PyTorch (shared/peers/basin_ref.py); the file\n"
     "is checked completely before anything is replaced.",
     cmd_load, NULL, CMD_CHANGES_MODEL, NULL},
    {"save", "PATH [checkpoint=1]", "save the model (.safetensors, atomic)",
     "checkpoint=1 also stores optimiser moments and pruning masks.", cmd_save, save_options,
     CMD_READS_WEIGHTS, NULL},
    {"info", "[F T]", "per-layer table: shapes, parameters, MACs, receptive field, sizes",
     "F and T give the input size (mel bins, frames); the default is the model's 10-second\n"
     "input (256 x 431 for cpresnet).",
     cmd_info, NULL, 0, NULL},
    {"forward", "IN OUT", "run the model on IN's 'x' (N, C, F, T); write 'logits' to OUT",
     "The same contract as shared/peers/basin_ref.py forward, in eval mode: use it to check\n"
     "basin against PyTorch on identical inputs.",
     cmd_forward, NULL, CMD_READS_WEIGHTS, NULL},
    {"clip", "PATH", "load an audio clip: rate, channels, duration, level",
     "Any format libsndfile reads (WAV, FLAC, Ogg/Vorbis, Opus, MP3, AIFF...). Damaged files\n"
     "are refused with the reason; the clip becomes the default for spec.",
     cmd_clip, NULL, 0, NULL},
    {"preset", "[NAME]", "show the front ends, or choose the session's",
     "Presets: demo (default), cpjku, sp4asc, panns16k, panns32k. A loaded model keeps the\n"
     "front end it was trained on; new models take the chosen preset.",
     cmd_preset, NULL, 0, complete_preset},
    {"spec", "[PATH] [preset=NAME] [--csv FILE] [style=ascii|color]", "log-mel spectrogram in the terminal",
     "Draws the clip's features (low frequencies at the bottom) with colour half-blocks on a\n"
     "256-colour UTF-8 terminal, an ASCII ramp otherwise. --csv FILE (or csv=FILE) writes the\n"
     "matrix: a header of frame times, then one row per mel bin with its centre frequency.\n"
     "width=N rows=N set the size; range=DB the dynamic range shown (80).",
     cmd_spec, spec_options, 0, complete_values},
    {"synth", "[out=DIR] [clips=N] [seconds=S] [seed=N] [rate=HZ] | scene=NAME out=FILE",
     "write a synthetic DCASE-layout scene data set, or one clip",
     "Procedural soundscapes of the 10 TAU 2020 scene classes, recorded by a reference device\n"
     "a and simulated devices b, c, s1..s6 that colour the same scenes (s4..s6 never appear\n"
     "in training); deterministic by seed. Without out= it goes to the cache folder (reused\n"
     "if present; `cache` shows it).\n"
     "  clips=N    exactly N clips (at least 10: one train clip per class; 20 or more give\n"
     "             every class an evaluate clip), a balanced subset of the full layout\n"
     "             (default 950: 10 classes x 8 locations x 5 segments on a few devices each)\n"
     "  seconds=S  clip length, 0.5..600 (5)\n"
     "  seed=N     the random seed (1)\n"
     "  rate=HZ    sample rate, 8000..96000 (22050); files are 16-bit PCM WAV\n"
     "It prints the clips per split; the split is by recording location.\n"
     "  scene=NAME [device=D] out=FILE.wav   one clip of a scene (airport .. tram) as device\n"
     "             D records it (a), in the format of FILE's extension; seconds, seed, rate\n"
     "             as above. Example: synth scene=park device=s5 out=park-s5.wav",
     cmd_synth, synth_options, 0, NULL},
    {"data", "[PATH|default] [seed=N] [evaluate=F] [fold=K] | export PATH [split=..] [norm=..]",
     "open a data set and summarise it; export features",
     "PATH is a DCASE-layout folder (meta.csv, evaluation_setup/) or a CSV with filename,label\n"
     "[,device,split,fold]; `default` (or no PATH before any data set is open) is the\n"
     "embedded synthetic set, generated on first use. Options alone re-split the open set.\n"
     "The summary's `splits` line says how train and evaluate were made. By default: the\n"
     "evaluation_setup/fold1 files, else a split column, else a fold column (fold 1 is\n"
     "evaluate), else by recording. A split by recording keeps every recording (identifier,\n"
     "or the file name without its device suffix) in one split, per class.\n"
     "  seed=N           split by recording with seed N (default: the session seed, set seed=)\n"
     "  evaluate=F       split by recording, share F of each class's recordings to evaluate\n"
     "                   (0.3 or 30%; default 0.3)\n"
     "  split=recording  split by recording even when the listing has its own split\n"
     "  fold=K           evaluation_setup/foldK files, or fold K of the fold column\n"
     "An empty train or evaluate split is a warning here and an error for training.\n"
     "data export writes the split's features as x (N, C, F, T), labels y and device (int64)\n"
     "with the front end and label names in the metadata, through the feature cache.\n"
     "split=train|evaluate|test|all (train); norm=model|train|none (model's statistics if any).",
     cmd_data, data_options, CMD_CHANGES_DATA, complete_data},
    {"cache", "[clear | cap=SIZE]", "show the feature and data-set cache: where, how big, its cap",
     "The cache folder ($XDG_CACHE_HOME/basin, else ~/.cache/basin) holds computed features\n"
     "and generated data sets (the default one is about 200 MiB).\n"
     "  cache            where it is, the size of each part, the cap\n"
     "  cache clear      remove the features and generated data sets; says how much it freed\n"
     "  cache cap=SIZE   cap the features at SIZE (2G, 500M, 0; default 2G), least recently\n"
     "                   used first out; kept in the cache folder. BASIN_CACHE_MAX overrides it.\n"
     "Generated data sets do not count against the cap and are never removed automatically.",
     cmd_cache, cache_options, 0, NULL},
    {"eval", "[split=train|evaluate|test|all] [by=device|class] [--csv FILE]",
     "accuracy and log loss of the model on a data set split: per device or class, confusion",
     "Runs the model (eval mode) on a split of the session's data set (the default one when\n"
     "none is open) through the model's front end, normalised with its basin.norm.\n"
     "Accuracy and log loss (-ln p of the true class, clipped to [1e-15, 1-1e-15] as sklearn),\n"
     "micro (over clips) and macro (the mean over classes, DCASE's class-wise average).\n"
     "  split=S     train, evaluate (default), test or all\n"
     "  by=device   per device, marked seen (in the train split) or unseen, and both pooled\n"
     "              (default); by=class: per class\n"
     "  --csv FILE  metrics in long format (split,group,name,seen,n,correct,acc,logloss,\n"
     "              acc_macro,logloss_macro; acc in 0..1) and the confusion matrix in\n"
     "              FILE-confusion.csv (true,<classes...>); csv=FILE works too",
     cmd_eval, eval_options, CMD_READS_WEIGHTS, complete_values},
    {"predict", "[PATH] [tta=N] [top=K] [--csv FILE]", "class probabilities of a clip, top K with labels",
     "PATH (any format, rate or channel count; default: the clip loaded with `clip`) goes\n"
     "through the model's front end and basin.norm. A clip longer than the model's training\n"
     "length (basin.input, else 10 s) is classified in windows of that length and the\n"
     "probabilities are their mean; a shorter one is tiled to fill it, as training pads.\n"
     "  tta=N       test-time augmentation: the mean softmax over N SpecAugment draws\n"
     "              (SP4ASC: 30; 0 = off, the default)\n"
     "  top=K       the K most probable classes (5)\n"
     "  --csv FILE  one label,probability row per class (csv=FILE works too)\n"
     "  window=S    window length in seconds (default: the model's training length)\n"
     "  hop=S       seconds between window starts (default: the window: no overlap); the\n"
     "              last window ends at the clip's end\n"
     "  seed=N      TTA's random draws (default: the session seed)",
     cmd_predict, predict_options, CMD_READS_WEIGHTS, NULL},
    {"train", "[epochs=N|steps=N] [opt=..] [lr=..] [bs=..] [sched=..] [out=DIR] ...",
     "train the model on the data set's train split, evaluating each epoch",
     "Trains the session's model in place on the open data set (features through the model's\n"
     "front end; cpjku's per-bin z-norm fitted on train and stored in the model), evaluating on\n"
     "the evaluate split after every epoch; one line per epoch. Ctrl-C stops after the current\n"
     "step: the model keeps that step's weights and a checkpoint is written. Options [defaults]:\n"
     "  recipe=none|cpjku|sp4asc  a paper's settings first, the other options over them\n"
     "  epochs=N [10] | steps=N    the run's length\n"
     "  opt=sgd|adam|adamw [adam]  lr= [1e-3; sgd 0.01]  wd= [0; adamw 0.01]  momentum= [0]\n"
     "                            nesterov=0|1 [0]  beta1= [0.9]  beta2= [0.999]  eps= [1e-8]\n"
     "  bs=N [32]  drop_last=0|1 [0]\n"
     "  sched=constant|linear|cosine|step [constant]  per epoch; lr_min= [lr/100] (linear: the\n"
     "            rate after the decay; cosine: the floor)  decay=START,END [E/7,5E/7] (linear)\n"
     "            step_every=K [E/3]  step_gamma= [0.1] (step)  warmup=EPOCHS [0] (per step)\n"
     "  loss=ce|focal [ce]  gamma= [1] (focal)\n"
     "  mixup=ALPHA [0: off]  mixup_mode=sample|batch [batch] (sample: CP-JKU's per example)\n"
     "  specaug=on|off|TW,TS,FW,FS [off]  on: SP4ASC's 2 x 128 frames, 2 x 32 bins, scaled to\n"
     "            the input (of 431 x 256)  roll=FRAMES [0]  gain=DB [0]\n"
     "  swa=N|auto [0]  average the weights of the last N epochs, BN recomputed; swa_every=K [1]\n"
     "  clip=NORM [0: off]  global gradient norm\n"
     "  seed=N [session seed]  eval=0|1 [1]  norm=model|train|none [model's, else train for\n"
     "            cpjku, else none]\n"
     "  out=DIR [runs/DATE-TIME]  trainlog.tsv (per step), epochs.tsv, checkpoint.safetensors\n"
     "            (every epoch), model.safetensors (at the end)",
     cmd_train, train_options, CMD_CHANGES_MODEL | CMD_CHANGES_DATA, complete_values},
    {"resume", "PATH [eval=0|1]", "continue a training run from its checkpoint",
     "PATH is a run's checkpoint.safetensors; open the same data set first. The run goes on\n"
     "in PATH's folder with its own options and ends with exactly the weights an\n"
     "uninterrupted run would have; the resumed model becomes the session's.",
     cmd_resume, resume_options, CMD_CHANGES_MODEL | CMD_CHANGES_DATA, NULL},
    {"set", "key=value ...", "settings: threads=N, seed=N", "threads=0 uses every core.",
     cmd_set, set_options, 0, NULL},
    {"jobs", "", "list the running job and the last ones",
     "Long work (train, resume, eval) runs as a job: in the split view the prompt stays live\n"
     "meanwhile; headless, each job is waited for unless its line ends with '&'.",
     cmd_jobs, NULL, CMD_NOT_LOGGED, NULL},
    {"stop", "", "cancel the running job at its next safe point (Ctrl-C does too)",
     "Training stops after the current step, keeping its weights and writing a checkpoint.",
     cmd_stop, NULL, CMD_NOT_LOGGED, NULL},
    {"wait", "", "wait until the running job ends", "Scripts use it after a line ending in '&'.",
     cmd_wait, NULL, CMD_NOT_LOGGED, NULL},
    {"view", "[NAME]", "show a view: spec, model, curves, confusion, devices, probs, ...",
     "In the split view the pane shows it (F2 cycles through them); headless, the view is\n"
     "printed. Without NAME: the list and the current one.\n"
     "  spec       the current clip's log-mel spectrogram (clip, spec)\n"
     "  model      the model's table (info)\n"
     "  curves     training loss and accuracy per epoch, live while training\n"
     "  confusion  the last evaluation's confusion matrix (eval)\n"
     "  devices    the last evaluation's accuracy per device, seen and unseen (eval)\n"
     "  probs      the last prediction's class probabilities (predict)\n"
     "  erf, landscape, hessian, prune, listen: the analyses' and the microphone's views",
     cmd_view, NULL, CMD_NOT_LOGGED, complete_view},
    {"compare", "A B [split=S]", "evaluate two models side by side (A, B: files, or `current`)",
     "Evaluates both on a split of the open data set (the evaluate split by default) and\n"
     "shows their accuracy per device side by side, seen and unseen marked.",
     cmd_compare, NULL, CMD_READS_WEIGHTS, NULL},
    {"export", "VIEW PATH.png [width=W] [height=H]", "a view's figure as a PNG image (axes, units, colour bar)",
     "For papers and slides: spec, curves, confusion, devices, probs, and the analyses' views\n"
     "that offer it. 1000 x 600 pixels by default (curves: 1000 x 900, loss above accuracy).",
     cmd_export, NULL, 0, complete_view},
    {"session", "save NAME | load NAME | list", "save the session, bring it back, or list the saved ones",
     "session save NAME writes sessions/NAME/ (NAME with a '/' is a folder of your choice):\n"
     "commands.log (every command that made the session, replayable with basin --script),\n"
     "state.json, the model, and the results (training logs, the last evaluation). session\n"
     "load NAME brings the state back without recomputing: model, data set, clip, preset,\n"
     "settings, training curves, evaluation.",
     cmd_session, NULL, CMD_NOT_LOGGED | CMD_CHANGES_MODEL | CMD_CHANGES_DATA, NULL},
    {"help", "[COMMAND]", "list commands, or explain one", "", cmd_help, NULL, CMD_NOT_LOGGED, complete_help},
    {"quit", "", "leave basin (also: exit, Ctrl-D)", "", cmd_quit, NULL, CMD_NOT_LOGGED, NULL},
};
const int n_commands = (int)(sizeof commands / sizeof commands[0]);

const struct command *command_find(const char *name)
{
    if (!strcmp(name, "exit")) name = "quit"; /* an alias, not listed */
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
    if (!*value || *end || (errno && errno != ERANGE))
        return app_fail(a, STATUS_INVALID, "%s=%s: not an integer", key, value);
    if (errno == ERANGE)
        return app_fail(a, STATUS_INVALID, "%s=%s: out of range %ld..%ld", key, value, lo, hi);
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
    /* Name and usage in one column as wide as the widest that fits; a longer one puts its
     * summary on the next line, in the same column. */
    enum { MAX_HEAD = 34 };
    int w = 0;
    for (int i = 0; i < n_commands; i++) {
        int k = (int)(strlen(commands[i].name) + 1 + strlen(commands[i].usage));
        if (k <= MAX_HEAD && k > w) w = k;
    }
    app_out(a, "commands (help COMMAND for details):\n");
    for (int i = 0; i < n_commands; i++) {
        char head[256];
        snprintf(head, sizeof head, "%s %s", commands[i].name, commands[i].usage);
        if ((int)strlen(head) <= w) app_out(a, "  %-*s  %s\n", w, head, commands[i].summary);
        else app_out(a, "  %s\n  %-*s  %s\n", head, w, "", commands[i].summary);
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
