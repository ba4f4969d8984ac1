/* session.h: which front end a command uses (the model's, else the session's preset) and
 * the preset a new model gets. The model <-> front end contract itself is in
 * basin/train/pipeline.h. */
#ifndef BASIN_UI_SESSION_H
#define BASIN_UI_SESSION_H

#include "basin/dsp/frontend.h"

struct app;
struct model;

/* The front end commands use: the current model's when it has one, else the session's
 * preset (demo unless `preset` chose another). *from says which ("model" or "session"). */
void session_frontend(const struct app *a, struct frontend_params *out, const char **from);

/* The preset a new model of this architecture gets when the user has not chosen one: the
 * front end of its paper (cpresnet: cpjku, sepnet: sp4asc, cnn10: panns16k). */
const char *session_arch_preset(int arch);

#endif
