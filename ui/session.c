/* session.c: model metadata <-> front-end parameters, and the session's preset. */
#include "session.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/model/json.h"
#include "basin/model/model.h"

int session_model_frontend(const struct model *m, struct frontend_params *out)
{
    if (!m->frontend) return status_set(STATUS_NOT_FOUND, "the model has no front end metadata");
    struct json *root;
    int s = json_parse(m->frontend, "basin.frontend", &root);
    if (s) return s;
    /* Start from the named preset so keys an older writer left out keep their values. */
    const struct json *name = json_find(root, "preset");
    const char *pname = NULL;
    if (!name || json_to_string(name, &pname) || frontend_preset(out, pname))
        frontend_preset(out, FRONTEND_DEFAULT_PRESET);
    for (int i = 0; i < json_len(root) && !s; i++) {
        const struct json *v = json_at(root, i);
        const char *key = json_key_at(root, i), *str;
        char text[64];
        int64_t iv;
        double dv;
        int bv;
        switch (json_kind_of(v)) {
        case JSON_KIND_STRING:
            json_to_string(v, &str);
            snprintf(text, sizeof text, "%s", str);
            break;
        case JSON_KIND_INT:
            json_to_int64(v, &iv);
            snprintf(text, sizeof text, "%lld", (long long)iv);
            break;
        case JSON_KIND_REAL:
            json_to_double(v, &dv);
            snprintf(text, sizeof text, "%.17g", dv);
            break;
        case JSON_KIND_BOOL:
            json_to_bool(v, &bv);
            snprintf(text, sizeof text, "%s", bv ? "true" : "false");
            break;
        case JSON_KIND_NULL:
            snprintf(text, sizeof text, "null");
            break;
        default:
            s = status_set(STATUS_FORMAT, "basin.frontend: '%s' is %s", key, json_kind_name(json_kind_of(v)));
            continue;
        }
        if (frontend_params_set(out, key, text) == STATUS_INVALID) s = STATUS_FORMAT;
    }
    json_destroy(root);
    if (!s) s = frontend_params_validate(out);
    return s ? status_prefix(STATUS_FORMAT, "basin.frontend") : STATUS_OK;
}

int session_set_model_frontend(struct model *m, const struct frontend_params *p)
{
    int n = frontend_params_json(p, NULL, 0);
    char *text = mem_alloc((size_t)n + 1);
    if (!text) return STATUS_NOMEM;
    frontend_params_json(p, text, (size_t)n + 1);
    mem_free(m->frontend);
    m->frontend = text;
    return STATUS_OK;
}

void session_frontend(const struct app *a, struct frontend_params *out, const char **from)
{
    if (a->model && !session_model_frontend(a->model, out)) {
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
