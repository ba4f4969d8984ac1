/* session.h: what ties layers together for the commands: the front end a model was
 * trained on (model metadata <-> dsp parameters), and the session's choice of preset. */
#ifndef BASIN_UI_SESSION_H
#define BASIN_UI_SESSION_H

#include "basin/dsp/frontend.h"

struct app;
struct model;

/* The model's front end from its basin.frontend metadata. Returns 0, STATUS_NOT_FOUND when
 * the model has none, or STATUS_FORMAT naming the bad key. */
int session_model_frontend(const struct model *m, struct frontend_params *out);
/* Store p as the model's basin.frontend. */
int session_set_model_frontend(struct model *m, const struct frontend_params *p);

/* The front end commands use: the current model's when it has one, else the session's
 * preset (demo unless `preset` chose another). *from says which ("model" or "session"). */
void session_frontend(const struct app *a, struct frontend_params *out, const char **from);

/* The preset a new model of this architecture gets when the user has not chosen one: the
 * front end of its paper (cpresnet: cpjku, sepnet: sp4asc, cnn10: panns16k). */
const char *session_arch_preset(int arch);

#endif
