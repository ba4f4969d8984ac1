/* dataset.h: acoustic scene data sets: the listing, the splits, classes, devices and cities.
 *
 * Two formats (DESIGN.md section 3):
 *
 *   DCASE layout  a directory (or its meta.csv) holding meta.csv, tab-separated with the
 *                 header `filename scene_label identifier source_label` (identifier and
 *                 source_label optional), and evaluation_setup/fold<k>_train.csv,
 *                 fold<k>_evaluate.csv (header `filename scene_label`) and, optionally,
 *                 fold<k>_test.csv (header `filename`). Paths are relative to the directory.
 *   plain CSV     any other file: a header naming at least `filename` and `label`, optional
 *                 `device`, `split`, `fold`, `identifier`, `city` columns, in any order
 *                 (names case-insensitive; aliases: file/path for filename, scene_label/
 *                 scene/class for label, source_label for device, recording for
 *                 identifier). Comma-separated, or tab-separated when the header has a tab
 *                 and no comma. Fields may be quoted ("a, b" and "" for a quote). Paths are
 *                 relative to the CSV's directory unless absolute.
 *
 * Both: blank lines are skipped, CRLF and a UTF-8 BOM are accepted, unquoted fields are
 * trimmed of surrounding spaces.
 *
 * Splits. DCASE: items listed in fold<k>_train.csv are train, in fold<k>_evaluate.csv
 * evaluate; fold<k>_test.csv lists (in the development set) the evaluate files again
 * without labels, so its files stay evaluate and only files it alone lists become test;
 * items of meta.csv that no setup file lists are DATASET_SPLIT_NONE (the DCASE 2020 setup
 * leaves some out to balance devices). CSV: a `split` column (train; val, valid,
 * validation, eval, evaluate; test; unused, none) wins; else a `fold` column (positive
 * integers) makes fold k evaluate and the other folds train. Without either (or DCASE
 * without setup files): a seeded split by recording. The recording of an item is its
 * identifier ("lyon-1162"), or, without one, its file name without directory, extension
 * and device suffix ("airport-lyon-1162-44650" for airport-lyon-1162-44650-a.wav, so the
 * parallel recordings of one segment on every device stay together). Per class (the class
 * of a recording's first item), recordings sorted by key are shuffled with the seed and
 * the first round(train_fraction * n) (at least one in each split when n >= 2) are train,
 * the rest evaluate. No recording is ever in two splits. A class with one recording puts
 * it in train, so a set of one recording per class has an empty evaluate split.
 *
 * The rule used is one line (dataset_split_source): "evaluation_setup/fold1_*.csv",
 * "split column", "fold column: fold 2 is evaluate, the others train", or "by recording,
 * seed 3, 30 % evaluate" followed by why when it was not asked for ("(no
 * evaluation_setup/fold1_train.csv)", "(no split or fold column)") or what it overrode
 * ("(evaluation_setup ignored)", "(split column ignored)", "(fold column ignored)").
 *
 * Names. Classes are sorted alphabetically (strcmp, as DCASE lists them) and a label is an
 * index into them. Devices come from source_label / the device column or, failing that
 * (DCASE layout only), from the file-name suffix "-<dev>.wav" where <dev> is 1-3
 * letters/digits starting with a letter ("a", "s1"); else "unknown". Devices are sorted in
 * natural order (a, b, c, s1, s2, ..., s10). Cities come from the city column, the
 * identifier without a trailing "-<digits>" ("lyon-3" -> "lyon"), or the file name
 * "<label>-<city>-..." ("airport-lisbon-1000-40000-a.wav" -> "lisbon"); else "unknown".
 * A device is seen when some train item uses it, unseen otherwise.
 *
 * Errors: every problem is one line naming the file and line: a missing file or column
 * (STATUS_NOT_FOUND / STATUS_FORMAT), a row with the wrong number of fields, an empty
 * filename or label, a duplicate row, an unknown split name, a bad fold, a setup file
 * listing a file that meta.csv lacks or giving it another label, a file in two setup
 * files, an empty data set (STATUS_FORMAT). A setup file with a header alone is an empty
 * split.
 * An empty train or evaluate split is allowed (a CSV of test clips to evaluate a trained
 * model); whoever needs a split calls dataset_require_split, and the `data` command warns.
 *
 * Audio files are not opened here: a missing or corrupt clip is found (and skipped) when
 * features are loaded (features.h). A dataset is immutable once opened; reading it from
 * several threads is safe.
 */
#ifndef BASIN_DATA_DATASET_H
#define BASIN_DATA_DATASET_H

#include <stddef.h>
#include <stdint.h>

enum dataset_split {
    DATASET_SPLIT_ANY = -1,   /* a wildcard in queries, never an item's split */
    DATASET_SPLIT_TRAIN,      /* "train" */
    DATASET_SPLIT_EVAL,       /* "evaluate" (DCASE's name for validation) */
    DATASET_SPLIT_TEST,       /* "test" */
    DATASET_SPLIT_NONE,       /* "unused": listed but in no split */
    DATASET_SPLIT_COUNT
};

enum dataset_format { DATASET_FORMAT_DCASE, DATASET_FORMAT_CSV };

struct dataset_item {
    const char *path;        /* the file to open: the listed name joined to the data set's
                              * directory (absolute names kept) */
    const char *filename;    /* as listed ("audio/airport-lisbon-1000-40000-a.wav") */
    const char *recording;   /* recording key: the identifier or the name-derived key */
    int label;               /* class index, 0 <= label < dataset_n_classes() */
    int device;              /* device index */
    int city;                /* city index */
    int fold;                /* the fold column's value; 0 when none */
    enum dataset_split split;
    int line;                /* line in the listing (meta.csv or the CSV), 1-based */
};

struct dataset_opts {
    int fold;                /* DCASE: use fold<fold>_*.csv; CSV fold column: the evaluate
                              * fold. 0: 1. A fold the listing cannot give is an error:
                              * missing setup files (STATUS_NOT_FOUND), a CSV without a fold
                              * column or with a split column (STATUS_INVALID), a fold no
                              * clip is in (STATUS_FORMAT) */
    double train_fraction;   /* seeded split: share of recordings in train; 0: 0.7 */
    uint64_t split_seed;     /* seeded split */
    int seeded_split;        /* 1: ignore setup files / split and fold columns and split
                              * by recording with the seed */
};
/* train_fraction 0 means this. */
#define DATASET_DEFAULT_TRAIN_FRACTION 0.7

struct dataset;              /* opaque, immutable once opened */

/* Open a data set: a directory or a file named meta.csv is the DCASE layout, any other file
 * a plain CSV. opts NULL: defaults. *out is owned by the caller. Errors as above. */
int dataset_open(struct dataset **out, const char *path, const struct dataset_opts *opts);
void dataset_destroy(struct dataset *ds);   /* NULL is a no-op */

enum dataset_format dataset_format(const struct dataset *ds);
/* The listing: meta.csv's path or the CSV's path. */
const char *dataset_listing(const struct dataset *ds);
/* How the splits were made, one line (the rule above: "evaluation_setup/fold1_*.csv",
 * "by recording, seed 3, 30 % evaluate (no split or fold column)", ...). */
const char *dataset_split_source(const struct dataset *ds);
/* 1 when the split was made by recording with a seed (dataset_opts or no other rule). */
int dataset_split_seeded(const struct dataset *ds);

int dataset_n_items(const struct dataset *ds);
/* Item i, 0 <= i < dataset_n_items(); owned by ds. Items are in listing order. */
const struct dataset_item *dataset_item(const struct dataset *ds, int i);

int dataset_n_classes(const struct dataset *ds);     /* M */
const char *dataset_class_name(const struct dataset *ds, int label);
/* Index of a class name, -1 when absent. */
int dataset_class_index(const struct dataset *ds, const char *name);

int dataset_n_devices(const struct dataset *ds);
const char *dataset_device_name(const struct dataset *ds, int device);
int dataset_device_index(const struct dataset *ds, const char *name);
/* 1 when some train item was recorded with the device, else 0 (unseen). */
int dataset_device_seen(const struct dataset *ds, int device);

int dataset_n_cities(const struct dataset *ds);
const char *dataset_city_name(const struct dataset *ds, int city);

/* Items matching split, label and device; DATASET_SPLIT_ANY / -1 match anything. */
int dataset_count(const struct dataset *ds, enum dataset_split split, int label, int device);
/* Indices of the items of a split (DATASET_SPLIT_ANY: all) in listing order into idx
 * (capacity dataset_n_items()); returns how many. */
int dataset_split_items(const struct dataset *ds, enum dataset_split split, int *idx);

/* 0 when split (DATASET_SPLIT_ANY: the whole set) has at least one clip. Else
 * STATUS_INVALID with one line naming the listing, the split and the rule that left it
 * empty ("data/meta.csv: the train split is empty (fold column: fold 1 is evaluate, the
 * others train)"); training and evaluation call this before they start. */
int dataset_require_split(const struct dataset *ds, enum dataset_split split);

/* "train", "evaluate", "test", "unused"; "any" for DATASET_SPLIT_ANY. */
const char *dataset_split_name(enum dataset_split split);
/* Parse a split name (the names above and the aliases val, valid, validation, eval, none);
 * STATUS_INVALID listing them. */
int dataset_split_parse(const char *name, enum dataset_split *out);

/* The summary the `data` command shows: source and split rule, clip counts per split,
 * classes, devices (seen / unseen), cities, then tables of clips per class and per device
 * and split. Multi-line text, '\n'-terminated; returns the length it needs, as snprintf. */
int dataset_summary(const struct dataset *ds, char *buf, size_t n);

#endif
