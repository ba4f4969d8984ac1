/* session.c: which front end a command uses, and the preset a new model gets. */
#include "session.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/model/model.h"
#include "basin/train/pipeline.h"

void session_frontend(const struct app *a, struct frontend_params *out, const char **from)
{
    if (a->model && !pipeline_model_frontend(a->model, out)) {
        if (from) *from = "model";
        return;
    }
    *out = a->preset;
    if (from) *from = "session";
}

const char *session_arch_preset(int arch)
{
    return arch == ARCH_CPRESNET ? "cpjku" : arch == ARCH_SEPNET ? "sp4asc" : "panns16k";
}
