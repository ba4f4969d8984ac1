/* commands.h: the command table. One entry per command; the parser, help and tab
 * completion all read it. Handlers live in cmd_*.c files grouped by subject. */
#ifndef BASIN_UI_COMMANDS_H
#define BASIN_UI_COMMANDS_H

struct app;

/* What a command does to the session's objects, checked against a running job's holds
 * (app.h, enum app_hold) before it runs. */
enum command_flags {
    CMD_CHANGES_MODEL = 1,      /* replaces or changes the model (new, load, train) */
    CMD_READS_WEIGHTS = 2,      /* reads the weights (save, eval, predict, forward) */
    CMD_CHANGES_DATA = 4,       /* replaces the data set (data) */
    CMD_NOT_LOGGED = 8,         /* leaves no trace in a session's commands.log (help, view) */
};

/* Completion of a command's arguments: the candidates for the word `text` that is word
 * number `word` (1 = the first argument) of a line whose earlier words are words[0..word);
 * up to max into out (static strings, or strings in buf of n bytes). Returns the count;
 * 0 hands over to file-name completion. */
typedef int (*command_complete_fn)(const char *text, int word, char *const *words,
                                   const char **out, int max, char *buf, int n);

struct command {
    const char *name;
    const char *usage;          /* arguments after the name */
    const char *summary;        /* one line for `help` */
    const char *help;           /* the rest of `help NAME` */
    int (*run)(struct app *a, int argc, char **argv); /* argv[0] is the name */
    const char *const *options; /* key= options, for completion; NULL-terminated or NULL */
    unsigned flags;             /* enum command_flags */
    command_complete_fn complete; /* NULL: options, then file names */
};

extern const struct command commands[];
extern const int n_commands;

/* The command called name, or NULL. */
const struct command *command_find(const char *name);

/* Handlers (cmd_*.c). */
int cmd_new(struct app *a, int argc, char **argv);
int cmd_load(struct app *a, int argc, char **argv);
int cmd_save(struct app *a, int argc, char **argv);
int cmd_info(struct app *a, int argc, char **argv);
int cmd_forward(struct app *a, int argc, char **argv);
int cmd_clip(struct app *a, int argc, char **argv);
int cmd_preset(struct app *a, int argc, char **argv);
int cmd_spec(struct app *a, int argc, char **argv);
int cmd_synth(struct app *a, int argc, char **argv);
int cmd_data(struct app *a, int argc, char **argv);
int cmd_cache(struct app *a, int argc, char **argv);
int cmd_eval(struct app *a, int argc, char **argv);
int cmd_predict(struct app *a, int argc, char **argv);
int cmd_train(struct app *a, int argc, char **argv);
int cmd_resume(struct app *a, int argc, char **argv);
int cmd_set(struct app *a, int argc, char **argv);
int cmd_jobs(struct app *a, int argc, char **argv);
int cmd_stop(struct app *a, int argc, char **argv);
int cmd_wait(struct app *a, int argc, char **argv);
int cmd_view(struct app *a, int argc, char **argv);
int cmd_compare(struct app *a, int argc, char **argv);
int cmd_landscape(struct app *a, int argc, char **argv);
int cmd_sharpness(struct app *a, int argc, char **argv);
int cmd_trajectory(struct app *a, int argc, char **argv);
int cmd_erf(struct app *a, int argc, char **argv);
int cmd_hessian(struct app *a, int argc, char **argv);
/* cmd_analysis.c: the options and completion of erf and hessian */
extern const char *const erf_options[], *const hessian_options[];
int complete_erf(const char *text, int word, char *const *words, const char **out, int max, char *buf, int n);
int complete_hessian(const char *text, int word, char *const *words, const char **out, int max, char *buf, int n);
int cmd_prune(struct app *a, int argc, char **argv);
int cmd_fold(struct app *a, int argc, char **argv);
int cmd_quantize(struct app *a, int argc, char **argv);
int cmd_budget(struct app *a, int argc, char **argv);
int cmd_bnstats(struct app *a, int argc, char **argv);
int cmd_export(struct app *a, int argc, char **argv);
int cmd_session(struct app *a, int argc, char **argv);
int cmd_lesson(struct app *a, int argc, char **argv);
int cmd_devices(struct app *a, int argc, char **argv);
int cmd_device(struct app *a, int argc, char **argv);
int cmd_play(struct app *a, int argc, char **argv);
int cmd_record(struct app *a, int argc, char **argv);
int cmd_listen(struct app *a, int argc, char **argv);
int cmd_help(struct app *a, int argc, char **argv);
int cmd_quit(struct app *a, int argc, char **argv);

/* key=value argument helpers for handlers. */
/* Split "key=value" in place; returns the value or NULL when arg has no '='. */
char *arg_split(char *arg);
/* Parse an integer option value in [lo, hi]; fails with a message naming the key. */
int arg_int(struct app *a, const char *key, const char *value, long lo, long hi, long *out);
/* A count "250000", "250k", "1.5M" or "N%" of `of`, rounded (cmd_prune.c); fails with a
 * message naming cmd and the key. */
int arg_count(struct app *a, const char *cmd, const char *key, const char *value, double of, double *out);

#endif
