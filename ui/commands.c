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
                                          "mels=", "seed=", "sparse=", "stages=", "inner=", NULL};
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
                                            "swa_every=", "bnstats=", "clip=", "seed=", "out=", "eval=", "norm=", "keep=", "prune=",
                                            "prune_ramp=", "prune_len=", "prune_scope=", "prune_cap=", "teacher=",
                                            "kd=", "T=", "admm=", "rho=", NULL};
static const char *const resume_options[] = {"eval=", NULL};
static const char *const landscape_options[] = {"preset=", "grid=", "range=", "seed=", "pairs=", "dims=", "eps=", "split=",
                                                "n=", "by=", "dirs=", "save-dirs=", "resume=", "batch=", "compare=",
                                                "--csv", NULL};
static const char *const sharpness_options[] = {"eps=", "pairs=", "seed=", "by=", "preset=", "grid=", "range=", "split=",
                                                "n=", "dirs=", "batch=", "--csv", NULL};
static const char *const trajectory_options[] = {"grid=", "range=", "split=", "n=", "batch=", "--csv", NULL};
static const char *const device_options[] = {"in=", "out=", "pace=", "rate=", NULL};
static const char *const play_options[] = {"from=", "to=", NULL};
static const char *const record_options[] = {"seconds=", "out=", "rate=", "channels=", "format=", NULL};
static const char *const prune_options[] = {"magnitude", "random", "structured", "step", "reset", "target=",
                                            "params=", "macs=", "cut=", "scope=",
                                            "cap=", "seed=", "ramp=", "len=", NULL};
static const char *const fold_options[] = {"mode=", NULL};
static const char *const quantize_options[] = {"fp16", "int8", "calib=", "n=", NULL};
static const char *const bnstats_options[] = {"split=", "n=", "batch=", "device=", NULL};
static const char *const budget_options[] = {"macs=", "params=", "bytes=", "precision=", NULL};
static const char *const listen_options[] = {"window=", "hop=", "smooth=", "first=", "windows=", NULL};

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
        {"scope=", {"global", "layer", NULL}},
        {"ramp=", {"linear", "exp", NULL}},
        {"prune_ramp=", {"linear", "exp", NULL}},
        {"prune_scope=", {"global", "layer", NULL}},
        {"mode=", {"exact", "sp4asc", NULL}},
        {"precision=", {"fp32", "fp16", "int8", NULL}},
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
     "  sparse=PARAMS keeps exactly PARAMS trainable parameters by a static random mask drawn\n"
     "  from the seed (Golubeva et al.): a wide sparse model the size of a narrow dense one.\n"
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
     "  bnstats=0|1 [0]  recompute the BN statistics for the final weights (as `bnstats`)\n"
     "  clip=NORM [0: off]  global gradient norm\n"
     "  seed=N [session seed]  eval=0|1 [1]  norm=model|train|none [model's, else train for\n"
     "            cpjku, else none]\n"
     "  out=DIR [runs/DATE-TIME]  trainlog.tsv (per step), epochs.tsv, checkpoint.safetensors\n"
     "            (every epoch), model.safetensors (at the end)\n"
     "  keep=last|all [last]  all: also keep checkpoint-<epoch>.safetensors for the start (0) and\n"
     "            every epoch, for `trajectory DIR`\n"
     "  prune=F|N [off]  CP-JKU's iterative magnitude pruning: at the start of epoch e, prune\n"
     "            F r(e) of the prunable weights (F a fraction, or N parameters to keep);\n"
     "            prune_ramp=linear|exp [linear] prune_len=L [50] prune_scope=global|layer\n"
     "            [global] prune_cap=F [0.5: the classifier at most half pruned] (help prune)\n"
     "  teacher=PATH  distil from a model trained on the same data and front end: its soft\n"
     "            targets computed once per clip; kd=ALPHA [0.5] weighs them against the labels,\n"
     "            T=TEMP [2] softens both (loss (1 - a) CE + a T^2 KL)\n"
     "  admm=MACS,PARAMS  ADMM toward a structured budget (FAU): the gradient gets\n"
     "            rho (W - Z + U), Z the budget's structure nearest W + U (as `prune structured`\n"
     "            finds it), updated each epoch; rho=R [0.01]; then `prune structured` cuts",
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
    {"landscape", "[preset=milling24|li18] [grid=N] [range=R] [seed=N] [split=S] [n=N] [by=device] [dirs=PATH] ...",
     "2-D loss landscape (Li et al.) along filter-normalised random directions, live",
     "Loss (mean cross-entropy) and accuracy of the model at w + a x + b y on a grid, x and y\n"
     "Gaussian per tensor, filter-normalised, biases and BN affine not perturbed, BN in eval\n"
     "mode, over the WHOLE split (n= takes a subset, flagged in every output). Points are\n"
     "computed centre first, then in rings; the landscape view shows the contours, the\n"
     "missing points and the sharpness disc as they fill in. stop keeps the points done.\n"
     "  preset=milling24  11 x 11 on +-0.25, seeds 42, 43, 44 (three pairs; ASC_Sharpness)\n"
     "  preset=li18       51 x 51 on +-1, seed 123 (loss-landscape)\n"
     "  (no preset: 11 x 11 on +-0.25, seed 42, one pair)\n"
     "  grid=N [11]  range=R [0.25]  dims=1|2 [2] (1: a slice along x)  eps=E [0.25, at most R]\n"
     "  seed=N [42] or seed=A,B,C  pairs=K (seeds N..N+K-1)\n"
     "  split=train|evaluate|test|all [train]  n=N (a subset of N clips: flagged)\n"
     "  by=device     a surface per device from the same passes (files FILE-dev-<device>.csv)\n"
     "  dirs=PATH     load the directions (safetensors x.<param>, y.<param>; basin_ref.py's)\n"
     "  save-dirs=PATH  save them (several pairs: PATH-s<seed>.safetensors)\n"
     "  --csv FILE [runs/landscape-DATE-TIME.csv]  ix,iy,alpha,beta,loss,acc (acc in %), then\n"
     "                '#' lines (settings, identity, sharpness); several pairs: FILE-s<seed>.csv\n"
     "  resume=FILE   go on from FILE's points (its settings are the defaults; same weights and\n"
     "                directions are checked); the file is rewritten as points arrive\n"
     "  compare=PATH  also the landscape of the model in PATH (its own directions, same seed),\n"
     "                point by point, side by side in the view (FILE-compare.csv)\n"
     "  batch=N       clips per forward pass [the largest up to 256 that fits]",
     cmd_landscape, landscape_options, CMD_READS_WEIGHTS, complete_values},
    {"sharpness", "[eps=0.25] [pairs=3] [seed=42] [by=device] [split=S] [n=N] [--csv FILE]",
     "epsilon-sharpness over direction pairs (Keskar et al.; ASC_Sharpness): mean, std, max",
     "S = 100 (max loss over the disc of radius eps - min over the grid) / (1 + min), the disc\n"
     "decided in grid indices ((i-c)^2 + (j-c)^2 <= R^2, R = round(eps / step)), on the\n"
     "milling24 grid (11 x 11 on +-0.25) for seeds 42, 43, 44 by default; mean, std (sample)\n"
     "and max over the pairs, overall and per device (by=device). Grids the session already\n"
     "computed on the same model, split and directions are reused; the others are computed\n"
     "(and written to runs/landscape-DATE-TIME*.csv). Options as landscape's, and\n"
     "  --csv FILE  device,seed,eps,radius,disc_points,min_loss,max_disc_loss,sharpness rows,\n"
     "              then mean, std and max per device (in the seed column)",
     cmd_sharpness, sharpness_options, CMD_READS_WEIGHTS, complete_values},
    {"trajectory", "[DIR] [grid=N] [range=R] [split=S] [n=N] [--csv FILE]",
     "a training run's path on its two PCA directions, over the landscape there",
     "DIR (default: the last training run) holds checkpoint-<epoch>.safetensors (train keep=all).\n"
     "The differences w_e - w_end of the conv and linear weights are reduced by PCA (centred,\n"
     "as Li et al. section 7 and loss-landscape); every epoch is projected on the two\n"
     "directions (unit vectors, NOT filter-normalised) and the landscape of the end model is\n"
     "computed on them, with the path drawn over the contours. Prints each epoch's\n"
     "coordinates, its distance from the end, the share the plane misses and its own loss.\n"
     "  grid=N [21]  range=R [1.2 x the path's extent]  split= [train]  n=N (a subset)\n"
     "  --csv FILE [runs/trajectory-DATE-TIME.csv]  the landscape; FILE-path.csv the path",
     cmd_trajectory, trajectory_options, 0, complete_values},
    {"erf", "[layer=NAME] [n=N] [split=S] [input=data|zero|noise|FILE] [seed=N] [compare=PATH] [--csv FILE]",
     "effective receptive field (Luo et al.): the input gradient of a map's centre unit, live",
     "The gradient of the centre unit (H//2, W//2) of a feature map, summed over its channels,\n"
     "with respect to the input, |.| averaged over inputs, the model in eval mode; drawn around\n"
     "the theoretical receptive field (the box), with the area holding 68 % and 95 % of the\n"
     "gradient mass: the fewest cells, and the smallest box centred on the RF's centre cell.\n"
     "  layer=NAME  a layer of `info` (s1.b2.conv1, head.bn) or a module, meaning its output\n"
     "              (stem, s1, s2, s3, head; bn0, b1..b4; s2.b1). Default: the last layer\n"
     "              before the global pooling (info's receptive-field layer)\n"
     "  input=data  [default] clips of split= [train]: n=N [100] of them spread evenly over the\n"
     "              split, all when it has fewer; through the model's front end and basin.norm\n"
     "  input=zero  one all-zero input;  input=noise: n= [100] N(0, 1) inputs, seed= [session]\n"
     "  input=FILE  the 'x' (N, C, F, T) of a .safetensors file (basin_ref.py erf's contract)\n"
     "  --csv FILE  f,t,df,dt,erf,erf_rel (and erf_c0.. per input channel): every cell of the\n"
     "              RF within the input, df and dt from its centre cell (csv=FILE works too)\n"
     "  compare=PATH  a second model (a pruned one, say) on the same inputs and layer name:\n"
     "              both maps side by side, both areas and their difference; its CSV goes to\n"
     "              FILE-compare.csv, `export erf P.png` its figure to P-compare.png",
     cmd_erf, erf_options, CMD_READS_WEIGHTS, complete_erf},
    {"hessian", "[top=K] [iters=N] [trace=on|off] [by=layer] [split=S] [n=N] [seed=N] ...",
     "curvature: the Hessian's top eigenvalues and trace (PyHessian), overall and per tensor",
     "The Hessian of the mean cross-entropy over the WHOLE split (eval mode: BN's running\n"
     "statistics, dropout off; n= takes a subset, flagged), by exact Hessian-vector products\n"
     "(an R-op pass, about three gradient passes each). Live in the hessian view. [defaults]\n"
     "  top=K [1]          eigenvalues, largest magnitude first: power iteration with deflation,\n"
     "                     iters=N [100] products each at most, stopping when the relative\n"
     "                     change is below tol=X [1e-3] (PyHessian's rule)\n"
     "  trace=on|off [on]  Hutchinson's estimate and its standard error over probes=N [100]\n"
     "                     Rademacher probes (stopping once se < 1 % of it, after 10), and each\n"
     "                     parameter tensor's trace from the same probes\n"
     "  by=layer           also each tensor's top eigenvalue (up to iters products per tensor)\n"
     "  split=S [train]    n=N (a subset of N clips, spread evenly)  seed=N [session seed]\n"
     "  hvp=exact|fd       fd: finite differences of gradients with step=X [1e-3] of rms(w):\n"
     "                     the curvature at that scale, not the Hessian across ReLU kinks\n"
     "  --csv FILE         block,params,eig1..eigK,trace,trace_se: the whole Hessian, then each\n"
     "                     tensor (its top eigenvalue in eig1)",
     cmd_hessian, hessian_options, CMD_READS_WEIGHTS, complete_hessian},
    {"prune", "[magnitude|random|structured|step|reset] [target=F | params=N|N% | macs=N|N%] ...",
     "prune the model through its masks; the per-layer table (sparsity, parameters, MACs left)",
     "Unstructured pruning of every weight of >= 2 dimensions (convs, shortcuts, classifier);\n"
     "BN and biases stay. A pruned weight is masked out of the forward and its gradient, the\n"
     "masks are saved with the model, and pruned models load pruned (also in PyTorch).\n"
     "  prune                     the per-layer table of the current masks (also the prune view)\n"
     "  prune magnitude target=F  prune fraction F (0.8 or 80%) of the prunable weights, smallest\n"
     "                            |w| first, masks recomputed from all weights (CP-JKU)\n"
     "  prune magnitude params=N  keep N trainable parameters (250000, 250k, 50% of today's):\n"
     "                            F = (parameters - N) / prunable, as CP-JKU derives it\n"
     "      scope=global|layer    one ranking over all layers [global], or F of each layer\n"
     "      cap=F [0.5]           the classifier is never pruned past F (against layer collapse)\n"
     "  prune random params=N [seed=S]  a static random mask, exactly N parameters kept, spread\n"
     "                            over the layers by size, the same for the same seed\n"
     "  prune step target=F|params=N [ramp=linear|exp] [len=L]  one epoch of the training ramp:\n"
     "                            F r(e) with e the next epoch after the sparsity reached so far,\n"
     "                            r = e/L (linear [default]) or exp(-(1 - e/L)^3); L [50]\n"
     "  prune structured macs=N|N% params=N|N%  remove whole channels (CP-ResNet): each filter\n"
     "                            with its BN channel and the input slices that read it, the\n"
     "                            smallest group norms first, as few as meet both limits\n"
     "                            (FAU's binary search, counted on the smaller structure); the\n"
     "                            model becomes the physically smaller one (new widths), checked\n"
     "                            against the masked one, with the measured speed-up; cut=0\n"
     "                            keeps the dense layout with those channels masked instead\n"
     "                            (it loads in basin_ref.py; the smaller widths do not)\n"
     "  prune reset               every mask back to 1\n"
     "In training: train prune=F|N [prune_ramp=linear|exp] [prune_len=L] [prune_scope=...]\n"
     "[prune_cap=F] applies the ramp at the start of every epoch.",
     cmd_prune, prune_options, CMD_CHANGES_MODEL, complete_values},
    {"fold", "[mode=exact|sp4asc]", "fold batch norms into the convs before them (inference)",
     "Each BN after a conv (or after the sum of two, sepnet's depthwise pair) is multiplied\n"
     "into the conv's filters, s = gamma / sqrt(var + eps), and becomes a per-channel shift:\n"
     "the logits stay the same to rounding, the file layout too (it still loads in PyTorch).\n"
     "mode=sp4asc drops eps as SP4ASC does (the logits move a little). Shows parameters, MACs\n"
     "and bytes before and after, and with a data set open the accuracy and log loss per\n"
     "device on the evaluate split.",
     cmd_fold, fold_options, CMD_CHANGES_MODEL, complete_values},
    {"quantize", "fp16|int8 [calib=train|evaluate] [n=N]", "fp16 or int8 weights (and int8 activations), simulated; measure the cost",
     "fp16: every parameter and BN statistic to the nearest half (SP4ASC's .half().float()).\n"
     "int8: the weights of every conv and linear, per output channel, symmetric (scale\n"
     "max|w| / 127); with a data set open, also the input of every conv and linear (what an\n"
     "int8 kernel reads): N clips of the calib split (default train, N 256 or the whole split,\n"
     "spread evenly) run in eval mode, and each input gets one per-tensor symmetric scale\n"
     "s = max|x| / 127; from then on every inference replaces it by clamp(round(x/s), +-127) * s.\n"
     "Biases and BN stay float. The values are simulated exactly in float (int8 weights times\n"
     "int8 activations summed, then rescaled, as an int32 accumulator would, to float rounding);\n"
     "the scales are saved with the model (basin.quant). Without a data set only the weights\n"
     "are quantised. Shows sizes before and after and, with a data set open, accuracy and log\n"
     "loss per device on the evaluate split.",
     cmd_quantize, quantize_options, CMD_CHANGES_MODEL, NULL},
    {"bnstats", "[split=train|evaluate|test|all] [n=N] [batch=B] [device=D]", "recompute the BN running statistics over a split",
     "Every batch norm's running mean and variance computed again for the weights as they\n"
     "are: N clips of the split (default train, all of it; spread evenly) run in train mode in\n"
     "batches of up to B (16) that each sample the whole split, without augmentation, each\n"
     "weighing the same (a cumulative average, as PyTorch's update_bn after SWA over a\n"
     "shuffled loader). For after pruning, after a short run whose\n"
     "running statistics still lag its weights, or on the clips a model will meet (adaptive\n"
     "BN; device=D takes only that device's clips; on the evaluate split that is fitting to\n"
     "the test data: say so when you report it).\n"
     "Shows how far the statistics moved and the accuracy and log loss per device on the\n"
     "evaluate split before and after. Refused after fold (the gammas are in the convs).",
     cmd_bnstats, bnstats_options, CMD_CHANGES_MODEL, complete_values},
    {"budget", "[macs=N] [params=N] [bytes=N] [precision=fp32|fp16|int8]", "does the model fit a budget, by how much",
     "Counts as DCASE's low-complexity task: non-zero parameters (pruned weights do not count),\n"
     "MACs per 10-second clip at the model's front end, and the parameters' bytes at the\n"
     "precision given (fp32). Counts take k, M, G: budget macs=30M params=128k bytes=128k\n"
     "precision=int8.",
     cmd_budget, budget_options, 0, NULL},
    {"export", "VIEW PATH.png [width=W] [height=H]", "a view's figure as a PNG image (axes, units, colour bar)",
     "For papers and slides: spec, curves, confusion, devices, probs, and the analyses' views\n"
     "that offer it: landscape (the loss as a heatmap with its contours, the sharpness disc\n"
     "and a trajectory's path; a slice as a curve), erf (the map with the RF box and the 68 %\n"
     "and 95 % boxes). 1000 x 600 pixels by default (curves: 1000 x 900, loss above accuracy).",
     cmd_export, NULL, 0, complete_view},
    {"devices", "", "list the audio devices (PortAudio), and the file and null backends",
     "Each device with its number, host API (ALSA, JACK, OSS), input and output channels,\n"
     "default rate and latency; the defaults are marked. `device` chooses among them.",
     cmd_devices, NULL, CMD_NOT_LOGGED, NULL},
    {"device", "[in=DEV] [out=DEV] [pace=real|fast] [rate=HZ]", "choose the input and output devices",
     "DEV is `default` (PortAudio's default device, the default), a number from `devices`, a\n"
     "name (or a part of one that only one device has), null (silence in, nowhere out) or\n"
     "file:PATH (input: the audio of PATH, as if a microphone heard it; output: what is played,\n"
     "written to PATH, float WAV for .wav). Without options: the current choice.\n"
     "  pace=real|fast  file and null devices: in real time (default) or as fast as possible\n"
     "  rate=HZ         open devices at HZ (0: basin chooses: the rate the work needs when the\n"
     "                  device takes it, else the device's default, converted with libsoxr)",
     cmd_device, device_options, CMD_NOT_LOGGED, NULL},
    {"play", "[PATH] [from=S] [to=S]", "play the current clip or a file on the output device",
     "Runs as a job: the status line shows the position, `stop` (or Ctrl-C) ends it. The clip is\n"
     "converted to a rate and channel count the device takes. One job runs at a time.",
     cmd_play, play_options, CMD_NOT_LOGGED, NULL},
    {"record", "[seconds=S] [out=PATH] [rate=HZ] [channels=N] [format=NAME]",
     "record from the input device into a file; it becomes the current clip",
     "Runs as a job with a level meter in the status line; `stop` ends it early and keeps what\n"
     "was recorded. The file is written atomically and becomes the current clip (spec and\n"
     "predict use it). Options [defaults]:\n"
     "  seconds=S [10]  out=PATH [recording-DATE-TIME.wav]\n"
     "  rate=HZ [the device's default]  channels=N [1]\n"
     "  format=NAME [by the extension: 16-bit for wav and flac] (wav16, wav24, wav-f32, flac16...)",
     cmd_record, record_options, CMD_NOT_LOGGED, NULL},
    {"listen", "[window=S] [hop=S] [smooth=S] [first=S] [windows=N]",
     "classify the input device's sound live: scrolling spectrogram and scene probabilities",
     "Streams the input through the model's front end and the model until `stop`: the last\n"
     "window of audio is classified every hop, the probabilities are smoothed, and the listen\n"
     "view shows the spectrogram, the probabilities and the top scene. Options [defaults]:\n"
     "  window=S [the model's training length]  hop=S [0.25, rounded to whole frames]\n"
     "  smooth=S [1: the smoothing's time constant; 0: none]\n"
     "  first=S [1: the first probabilities after S seconds, the audio so far tiled to the\n"
     "           window as predict does with a short clip]\n"
     "  windows=N [no limit: classify N windows in turn, none skipped, then stop]\n"
     "Each window gets the probabilities `predict` gives the same audio as a clip. When it\n"
     "ends: the latency from the ring to the probabilities, a window's cost against the hop,\n"
     "the CPU use, and the audio lost to overruns (a warning on the status line meanwhile).",
     cmd_listen, listen_options, CMD_NOT_LOGGED | CMD_READS_WEIGHTS, NULL},
    {"session", "save NAME | load NAME | list", "save the session, bring it back, or list the saved ones",
     "session save NAME writes sessions/NAME/ (NAME with a '/' is a folder of your choice):\n"
     "commands.log (every command that made the session, replayable with basin --script),\n"
     "state.json, the model, and the results (training logs, the last evaluation). session\n"
     "load NAME brings the state back without recomputing: model, data set, clip, preset,\n"
     "settings, training curves, evaluation.",
     cmd_session, NULL, CMD_NOT_LOGGED | CMD_CHANGES_MODEL | CMD_CHANGES_DATA, NULL},
    {"lesson", "[NAME | next | stop]", "step through a lesson (sessions/lessons), or list them",
     "At the prompt each step's explanation is shown and its command put on the prompt line:\n"
     "Enter runs it (edit it first if you like), and the next step follows. Headless, the whole\n"
     "lesson runs, each step narrated. Lessons take ${NAME:-default} settings from the\n"
     "environment for a quick form (each lesson's README lists them).",
     cmd_lesson, NULL, CMD_NOT_LOGGED, NULL},
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
