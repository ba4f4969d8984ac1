/* pipeline.h: the contract between a model and the features it takes.
 *
 * A model records the front end it was made for (basin.frontend), its class names
 * (basin.labels) and, once trained on normalised features, the per-mel-bin statistics it
 * expects (basin.norm). This module reads and writes those, checks that a model fits a data
 * set, and writes feature exports. It lives in the train layer, the lowest one that sees
 * both models and data sets; training, evaluation, prediction and the commands use it.
 */
#ifndef BASIN_TRAIN_PIPELINE_H
#define BASIN_TRAIN_PIPELINE_H

#include "basin/data/dataset.h"
#include "basin/dsp/frontend.h"

struct dataset;
struct features;
struct model;
struct progress;

/* The model's front end from its basin.frontend metadata (frontend_params_from_json).
 * STATUS_NOT_FOUND when the model has none, STATUS_FORMAT naming the bad key. */
int pipeline_model_frontend(const struct model *m, struct frontend_params *out);
/* Store p as the model's basin.frontend. 0 or STATUS_NOMEM. */
int pipeline_set_model_frontend(struct model *m, const struct frontend_params *p);
/* Store per-bin statistics (n values each) as the model's basin.norm. 0 or STATUS_NOMEM. */
int pipeline_set_model_norm(struct model *m, const float *mean, const float *std, int n);
/* Store the data set's class names as the model's basin.labels. 0 or STATUS_NOMEM. */
int pipeline_set_model_labels(struct model *m, const struct dataset *ds);

/* 0 when m can take the features of front end p computed from ds, else STATUS_MISMATCH
 * saying exactly what differs: the number of classes (with the data set's names), the
 * class names when the model has labels, the mel bins the model's bn0 normalises, the
 * statistics of basin.norm, or an input smaller than the model accepts. */
int pipeline_check(const struct model *m, const struct frontend_params *p, const struct dataset *ds);

/* The features m takes of n clips of split, spread evenly over it (every clip when n <= 0 or
 * the split has no more): front end p, the model's input channels, clips shorter than the
 * set's length repeated, and the model's basin.norm applied when it has one. *n_split (may
 * be NULL) gets the split's size. Errors: an empty split (dataset_require_split), a model
 * that does not fit (pipeline_check), those of features_load_items. */
int pipeline_features(struct features **out, const struct model *m, const struct dataset *ds,
                      const struct frontend_params *p, enum dataset_split split, int n, int *n_split,
                      const struct progress *progress);

/* Write f, features of ds computed with front end p, as a feature export: x F32 (N, C, F,
 * T), y I64 (N), device I64 (N), with basin.format, basin.frontend, basin.labels,
 * basin.devices, basin.split (split) and basin.znorm (norm) in the metadata. Atomic. */
int pipeline_export(const char *path, const struct features *f, const struct dataset *ds,
                    const struct frontend_params *p, const char *split, const char *norm);

#endif
