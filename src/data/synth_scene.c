/* synth_scene.c: the ten acoustic scenes as mixtures of shared ingredients.
 *
 * Key idea: a scene is a recipe, a short C function calling ingredients (noise beds, hums,
 * babble, passing vehicles, clicks, birds, chimes, music, wind, rail) with its own levels,
 * densities and spectra, then a room (reverberation) and a level. Classes share ingredients,
 * so no single cue gives a class away: street and park both have traffic, metro and metro
 * station both have trains, airport and shopping mall both have babble and chimes.
 *
 * Every ingredient call has a slot number and draws from two streams split off by it: the
 * location stream L (parameters fixed per recording location: levels, frequencies,
 * densities, a bird's song, a chime's tune) and the segment stream S (this clip's event
 * times, noise and small jitter). Splitting per slot keeps each ingredient's draws apart, so
 * a location's character does not depend on what any segment drew.
 *
 * Levels are RMS in dBFS of the ingredient over the clip (textures, babble) or at the peak
 * of an event (vehicles, chimes); scenes land around -30 to -18 dBFS before the device.
 *
 * ref: G. E. Peterson and H. L. Barney (1952), vowel formant frequencies (the babble's
 *      vowels); A. Farnell, "Designing Sound" (2010), procedural recipes for wind, rain,
 *      vehicles, bells and birdsong, which these follow in spirit; TAU Urban Acoustic Scenes
 *      2020 Mobile (Heittola, Mesaros, Virtanen, DCASE 2020) for the ten scene labels.
 */
#include "synth_internal.h"

#include <string.h>

#include "basin/core/mem.h"
#include "basin/core/status.h"
#include "basin/data/synth.h"

/* ---- the scene under construction -------------------------------------------------- */

struct scene {
    double sr;
    long n, nb;                 /* samples; block-rate values (n / SYNTH_BLOCK + 2) */
    float *mix, *wet;           /* (n): dry mix and reverberation send */
    float *a, *b, *c;           /* (n): scratch */
    float *env, *env2;          /* (nb): scratch */
    float *speed, *prox;        /* (nb): vehicle speed in [0, 1] and nearness in [0, 1] */
    const float *sine;
    struct rng loc, seg;        /* location and segment streams */
    struct synth_work *w;       /* for its poll */
    int stopped;                /* the poll asked to stop: ingredients return at once */
};

/* 1 when the render is to be abandoned (synth_work's poll), checked as each ingredient
 * starts: a cancelled render stops within one ingredient. */
static int halted(struct scene *s)
{
    if (!s->stopped && s->w->poll && s->w->poll(s->w->poll_user)) s->stopped = 1;
    return s->stopped;
}

static void streams(const struct scene *s, int slot, struct rng *L, struct rng *S)
{
    *L = rng_split(&s->loc, (uint64_t)slot);
    *S = rng_split(&s->seg, (uint64_t)slot);
}

/* 2u - 1: uniform in [-1, 1). */
static double sym(struct rng *r)
{
    return 2 * rng_uniform(r) - 1;
}

/* Absent at this location with probability absent_loc, else in this segment with
 * probability absent_seg. Both streams always draw, so later draws do not shift. */
static int present(struct rng *L, struct rng *S, double absent_loc, double absent_seg)
{
    double l = rng_uniform(L), g = rng_uniform(S);
    return l >= absent_loc && g >= absent_seg;
}

static void zero(float *x, long n)
{
    memset(x, 0, (size_t)n * sizeof *x);
}

static void normalise(float *x, long n, double level_db)
{
    double r = synth_rms(x, n);
    if (r > 1e-12) synth_scale(x, n, (float)(synth_db(level_db) / r));
}

/* mix += g x; wet += g wet x. */
static void emit(struct scene *s, const float *x, float g, float wet)
{
    synth_mix(s->mix, x, s->n, g);
    if (wet > 0) synth_mix(s->wet, x, s->n, g * wet);
}

static long secs(const struct scene *s, double t)
{
    return (long)(t * s->sr);
}

/* ---- helpers: tones, voices -------------------------------------------------------- */

/* Add a tone to y over [t0, t0 + len) (clipped to the clip): partials at f * ratio[i] with
 * amplitudes amp[i], pitch gliding by glide_oct over the tone, linear attack att_s, then
 * exponential decay with time constant tau_s (0: sustained), a 20 ms release at the end. */
static void tone_add(const struct scene *s, float *y, long t0, long len, double f,
                     const double *ratio, const double *amp, int n_p, double glide_oct,
                     double att_s, double tau_s, double gain)
{
    uint32_t ph[8] = {0}, inc[8];
    float a[8];
    if (n_p > 8) n_p = 8;
    long att = secs(s, att_s) + 1, rel = secs(s, 0.02) + 1;
    float dec = tau_s > 0 ? (float)synth_exp2(-1.44269504088896340736 / (tau_s * s->sr)) : 1.0f;
    float e = 1;
    for (long i0 = 0; i0 < len; i0 += SYNTH_BLOCK) {
        double fb = f * synth_exp2(glide_oct * (double)i0 / (double)len);
        for (int p = 0; p < n_p; p++) {
            inc[p] = synth_phase_inc(fb * ratio[p], s->sr);
            a[p] = inc[p] ? (float)amp[p] : 0.0f;
        }
        long m = len - i0 < SYNTH_BLOCK ? len - i0 : SYNTH_BLOCK;
        for (long j = 0; j < m; j++) {
            long i = i0 + j, t = t0 + i;
            float v = 0;
            for (int p = 0; p < n_p; p++) {
                v += a[p] * synth_sine_at(s->sine, ph[p]);
                ph[p] += inc[p];
            }
            float g = e;
            e *= dec;
            if (i < att) g *= (float)i / (float)att;
            if (len - i < rel) g *= (float)(len - i) / (float)rel;
            if (t >= 0 && t < s->n) y[t] += (float)gain * g * v;
        }
    }
}

/* Peterson & Barney mean formants (adult male), Hz: F1, F2, F3. */
static const double vowels[][3] = {
    {270, 2290, 3010}, {390, 1990, 2550}, {530, 1840, 2480}, {660, 1720, 2410},
    {730, 1090, 2440}, {570, 840, 2410}, {440, 1020, 2240}, {300, 870, 2240},
    {640, 1190, 2390}, {490, 1350, 1690},
};
#define N_VOWELS ((int)(sizeof vowels / sizeof vowels[0]))

/* Add one talker to y over [t0, t1): a low-passed sawtooth (the glottis) through three
 * formant resonators that glide between vowels, one syllable every ~1/rate_hz seconds,
 * in talk spurts (talk = fraction of time talking). Fricatives (noise bursts at syllable
 * onsets) go to fric, to be high-passed by the caller. */
static void voice_add(const struct scene *s, struct rng *r, float *y, float *fric, long t0,
                      long t1, double f0, double fscale, double rate_hz, double talk,
                      double gain)
{
    const double sr = s->sr, q[3] = {5, 9, 12}, fg[3] = {1, 0.55, 0.3};
    struct synth_biquad bp[3];
    double F[3], Ft[3];
    int v = (int)rng_below(r, N_VOWELS);
    for (int i = 0; i < 3; i++) {
        F[i] = Ft[i] = vowels[v][i] * fscale;
        synth_biquad_init(&bp[i], SYNTH_BANDPASS, F[i], q[i], 0, sr);
    }
    uint32_t ph = (uint32_t)rng_u64(r);
    float glot = 0, gc = synth_onepole_coef(1.5 * f0, sr), e_prev = 0;
    double on_s = 1.8, off_s = talk < 0.99 ? on_s * (1 - talk) / talk : 0.05;
    int talking = rng_uniform(r) < talk;
    long state_end = t0 + secs(s, (talking ? on_s : off_s) * synth_unif(r, 0.1, 1.5));
    long syl_start = t0, syl_len = 1;
    double syl_amp = 0, pitch = f0, pitch_t = f0;
    for (long i0 = t0; i0 < t1; i0 += SYNTH_BLOCK) {
        long m = t1 - i0 < SYNTH_BLOCK ? t1 - i0 : SYNTH_BLOCK;
        if (i0 >= state_end) {
            talking = !talking;
            state_end = i0 + secs(s, (talking ? on_s : off_s) * synth_unif(r, 0.4, 1.6));
        }
        if (talking && i0 >= syl_start + syl_len) {
            syl_start = i0;
            syl_len = secs(s, synth_unif(r, 0.6, 1.4) / rate_hz) + 1;
            v = (int)rng_below(r, N_VOWELS);
            for (int i = 0; i < 3; i++) Ft[i] = vowels[v][i] * fscale * synth_unif(r, 0.9, 1.1);
            syl_amp = synth_unif(r, 0.4, 1);
            pitch_t = f0 * synth_exp2(synth_unif(r, -0.2, 0.25));
            if (rng_uniform(r) < 0.35) { /* fricative onset */
                long fl = secs(s, synth_unif(r, 0.04, 0.09)), end = i0 + fl < t1 ? i0 + fl : t1;
                float fa = (float)(gain * syl_amp);
                for (long t = i0; t < end; t++) {
                    float w =
                        (float)((int32_t)(uint32_t)(rng_u64(r) >> 32) >> 8) * (1.0f / 8388608.0f);
                    float ramp = (float)(end - t) / (float)fl;
                    fric[t] += fa * ramp * w;
                }
            }
        }
        float e1 = 0;
        if (talking) {
            double pos = (double)(i0 + m - syl_start) / (double)syl_len;
            if (pos < 1) {
                float sn = synth_sine_at(s->sine, (uint32_t)(pos * 2147483648.0));
                e1 = (float)syl_amp * sn * sn;
            }
        }
        if (e_prev == 0 && e1 == 0) continue;
        for (int i = 0; i < 3; i++) {
            F[i] += (Ft[i] - F[i]) * 0.3;
            synth_biquad_set(&bp[i], SYNTH_BANDPASS, F[i], q[i], 0, sr);
        }
        pitch += (pitch_t - pitch) * 0.08;
        uint32_t inc = synth_phase_inc(pitch, sr);
        float de = (e1 - e_prev) / (float)m, e = e_prev, g = (float)gain;
        for (long j = 0; j < m; j++) {
            float saw = (float)(int32_t)ph * (1.0f / 2147483648.0f);
            ph += inc;
            glot += gc * (saw - glot);
            float o = synth_biquad_tick(&bp[0], glot) * (float)fg[0] +
                      synth_biquad_tick(&bp[1], glot) * (float)fg[1] +
                      synth_biquad_tick(&bp[2], glot) * (float)fg[2];
            y[i0 + j] += g * e * o;
            e += de;
        }
        e_prev = e1;
    }
}

/* ---- ingredients ------------------------------------------------------------------- */

/* A noise texture: ventilation, distant traffic, tunnel roar, a fountain, crowd murmur. */
struct bed {
    double level_db, level_spread;   /* RMS dBFS; location spread +- dB */
    int colour;                      /* 0 white, 1 pink, 2 brown */
    double hp_hz, lp_hz;             /* 0: none */
    double peak_hz, peak_q, peak_db; /* a resonance; 0 dB: none */
    double oct;                      /* location spread of every frequency, +- octaves */
    double mod_hz, mod_db;           /* slow level wander */
    double wet, absent_loc, absent_seg;
};

static void ing_bed(struct scene *s, int slot, const struct bed *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L) + sym(&S);
    double m = synth_exp2(p->oct * sym(&L)), mod_db = p->mod_db * synth_unif(&L, 0.6, 1.4);
    float *x = s->a;
    struct synth_biquad f;
    synth_white(&S, x, s->n, 1);
    synth_colour(x, s->n, p->colour, s->sr);
    if (p->hp_hz > 0) {
        synth_biquad_init(&f, SYNTH_HIGHPASS, p->hp_hz * m, 0.707, 0, s->sr);
        synth_biquad_run(&f, x, s->n);
    }
    if (p->lp_hz > 0) {
        synth_biquad_init(&f, SYNTH_LOWPASS, p->lp_hz * m, 0.707, 0, s->sr);
        synth_biquad_run(&f, x, s->n);
    }
    if (p->peak_db != 0) {
        synth_biquad_init(&f, SYNTH_PEAK, p->peak_hz * m, p->peak_q, p->peak_db, s->sr);
        synth_biquad_run(&f, x, s->n);
    }
    normalise(x, s->n, lvl);
    if (mod_db > 0) {
        synth_wander(&S, s->env, s->nb, p->mod_hz, mod_db, s->sr);
        synth_apply_env(x, s->n, s->env);
    }
    emit(s, x, 1, (float)p->wet);
}

/* A harmonic hum: diesel engine, transformer, ventilation fan, idling cars. With
 * speed_oct / speed_db it follows s->speed (set by a speed profile beforehand). */
struct hum {
    double level_db, level_spread;
    double f0, f0_oct;               /* fundamental; location spread +- octaves */
    int n_harm;                      /* at most 16 */
    double tilt_db, timbre_db;       /* per-harmonic slope; random per-harmonic spread */
    double drift_oct, drift_hz;      /* slow pitch wander */
    double speed_oct, speed_db;      /* pitch and level rise at speed 1 */
    double wet, absent_loc, absent_seg;
};

static void ing_hum(struct scene *s, int slot, const struct hum *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L) + sym(&S);
    double f0 = p->f0 * synth_exp2(p->f0_oct * sym(&L)) * synth_exp2(0.03 * sym(&S));
    int nh = p->n_harm < 16 ? p->n_harm : 16;
    float amp[16];
    uint32_t ph[16];
    double pw = 0;
    for (int h = 0; h < nh; h++) {
        amp[h] = (float)synth_db(-p->tilt_db * h + p->timbre_db * sym(&L));
        pw += 0.5 * amp[h] * amp[h];
        ph[h] = (uint32_t)rng_u64(&S);
    }
    float g = (float)(synth_db(lvl) / sqrt(pw));
    /* Pitch wander as a gain curve: depth in dB = octaves * 20 log10(2). */
    synth_wander(&S, s->env, s->nb, p->drift_hz > 0 ? p->drift_hz : 0.2, p->drift_oct * 6.0206,
                 s->sr);
    float *x = s->a, *lv = s->env2;
    zero(x, s->n);
    for (long b = 0; b < s->nb; b++)
        lv[b] = (float)(g * (p->speed_db != 0 ? synth_db(p->speed_db * (s->speed[b] - 1)) : 1));
    for (long b = 0, i0 = 0; i0 < s->n; b++, i0 += SYNTH_BLOCK) {
        double f =
            f0 * s->env[b] * (p->speed_oct != 0 ? synth_exp2(p->speed_oct * s->speed[b]) : 1);
        long m = s->n - i0 < SYNTH_BLOCK ? s->n - i0 : SYNTH_BLOCK;
        for (int h = 0; h < nh; h++) {
            if (f * (h + 1) > 0.45 * s->sr) break;
            uint32_t inc = synth_phase_inc(f * (h + 1), s->sr);
            float a = amp[h];
            for (long j = 0; j < m; j++) {
                x[i0 + j] += a * synth_sine_at(s->sine, ph[h]);
                ph[h] += inc;
            }
        }
    }
    synth_apply_env(x, s->n, lv);
    emit(s, x, 1, (float)p->wet);
}

/* Crowd babble: several talkers at different distances, normalised to a level. */
struct babble {
    double level_db, level_spread;
    int voices, voices_spread;       /* talkers; location spread +- */
    double f0_lo, f0_hi;             /* pitch range, Hz */
    double rate_hz, talk;            /* syllables per second; fraction of time talking */
    double spread_db;                /* talkers' level spread (distance) */
    double lp_hz;                    /* absorption of distant talkers; 0: none */
    double wet, absent_loc, absent_seg;
};

static void ing_babble(struct scene *s, int slot, const struct babble *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L) + sym(&S);
    int nv =
        p->voices + (int)rng_below(&L, (uint64_t)(2 * p->voices_spread + 1)) - p->voices_spread;
    nv += (int)rng_below(&S, 3) - 1;
    if (nv < 1) nv = 1;
    double rate = p->rate_hz * synth_unif(&L, 0.85, 1.15),
           lp = p->lp_hz * synth_exp2(0.3 * sym(&L));
    float *x = s->b, *fric = s->c;
    zero(x, s->n);
    zero(fric, s->n);
    for (int v = 0; v < nv; v++) {
        double f0 = synth_unif(&S, p->f0_lo, p->f0_hi);
        double fscale = f0 > 165 ? synth_unif(&S, 1.1, 1.25) : synth_unif(&S, 0.95, 1.05);
        double g = synth_db(-p->spread_db * rng_uniform(&S));
        voice_add(s, &S, x, fric, 0, s->n, f0, fscale, rate * synth_unif(&S, 0.85, 1.15), p->talk,
                  g);
    }
    double rv = synth_rms(x, s->n), rf = synth_rms(fric, s->n);
    if (rv < 1e-12) return;
    struct synth_biquad f;
    synth_biquad_init(&f, SYNTH_HIGHPASS, 3500, 0.707, 0, s->sr);
    synth_biquad_run(&f, fric, s->n);
    if (rf > 1e-12) synth_mix(x, fric, s->n, (float)(0.3 * rv / rf));
    if (lp > 0) {
        synth_biquad_init(&f, SYNTH_LOWPASS, lp, 0.707, 0, s->sr);
        synth_biquad_run(&f, x, s->n);
    }
    normalise(x, s->n, lvl);
    emit(s, x, 1, (float)p->wet);
}

/* Passing vehicles: tyre noise brightening and an engine pitch falling (Doppler) as each
 * passes; level ~ nearness^1.5 around the closest approach. */
struct passby {
    double rate_per_min, rate_oct;   /* vehicles per minute; location spread */
    double level_db, level_spread;   /* at the closest approach */
    double lp_hz;                    /* tyre noise brightness at the closest approach */
    double truck_frac, moto_frac;
    double wet, absent_loc, absent_seg;
};

static void ing_passby(struct scene *s, int slot, const struct passby *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double rate = p->rate_per_min * synth_exp2(p->rate_oct * sym(&L)) / 60;
    double lvl = p->level_db + p->level_spread * sym(&L),
           lp0 = p->lp_hz * synth_exp2(0.3 * sym(&L));
    double margin = 3, dur = (double)s->n / s->sr;
    int nv = synth_poisson(&S, rate * (dur + 2 * margin));
    float *x = s->b, noise[SYNTH_BLOCK];
    zero(x, s->n);
    for (int v = 0; v < nv; v++) {
        double tc = synth_unif(&S, -margin, dur + margin), w = synth_unif(&S, 0.5, 1.4);
        double u = rng_uniform(&S), f0, eng_db;
        int nh;
        if (u < p->truck_frac) f0 = synth_unif(&S, 30, 55), nh = 10, eng_db = 0;
        else if (u < p->truck_frac + p->moto_frac) f0 = synth_unif(&S, 90, 160), nh = 8, eng_db = 2;
        else f0 = synth_unif(&S, 55, 110), nh = 6, eng_db = -6;
        double g = synth_db(lvl - 8 * rng_uniform(&S)), lp = lp0 * synth_unif(&S, 0.8, 1.25);
        double eg = synth_db(eng_db) * 0.5;
        long t0 = secs(s, tc - 4 * w), t1 = secs(s, tc + 4 * w);
        if (t0 < 0) t0 = 0;
        if (t1 > s->n) t1 = s->n;
        if (t0 >= t1) continue;
        t0 -= t0 % SYNTH_BLOCK;
        struct synth_biquad f;
        synth_biquad_init(&f, SYNTH_LOWPASS, lp, 0.707, 0, s->sr);
        uint32_t ph[10] = {0};
        float rum = 0, rc = synth_onepole_coef(120, s->sr);
        /* Tyre noise gain: white noise keeps ~lp / (sr/2) of its power through the low-pass. */
        float tyre = (float)(sqrt(3.0 * 0.5 * s->sr / lp));
        float e_prev = -1;
        for (long i0 = t0; i0 < t1; i0 += SYNTH_BLOCK) {
            long m = t1 - i0 < SYNTH_BLOCK ? t1 - i0 : SYNTH_BLOCK;
            double xx = ((double)(i0 + m) / s->sr - tc) / w, prox = 1 / sqrt(1 + xx * xx);
            float e1 = (float)(g * prox * sqrt(prox));
            if (e_prev < 0) e_prev = e1;
            synth_biquad_set(&f, SYNTH_LOWPASS, lp * (0.3 + 0.7 * prox), 0.707, 0, s->sr);
            double doppler = 1 - 0.05 * xx * prox;
            uint32_t inc[10];
            for (int h = 0; h < nh; h++) inc[h] = synth_phase_inc(f0 * (h + 1) * doppler, s->sr);
            synth_white(&S, noise, m, 1);
            float de = (e1 - e_prev) / (float)m, e = e_prev;
            for (long j = 0; j < m; j++) {
                rum += rc * (noise[j] - rum);
                float o = synth_biquad_tick(&f, noise[j]) * tyre + rum * 6;
                float eng = 0;
                for (int h = 0; h < nh; h++) {
                    eng += synth_sine_at(s->sine, ph[h]) / (float)(h + 1);
                    ph[h] += inc[h];
                }
                x[i0 + j] += e * (0.5f * o + (float)eg * eng);
                e += de;
            }
            e_prev = e1;
        }
    }
    emit(s, x, 1, (float)p->wet);
}

/* Clicks: footsteps, heels, suitcase wheels, rattles, indicator ticks. Decaying noise
 * bursts through a band-pass (and an optional ring), as a Poisson stream or a jittered
 * periodic one, continuous or in groups. */
struct clicks {
    double rate_hz, rate_oct;        /* clicks per second (within a group); location spread */
    double level_db, level_spread;   /* a click's level */
    double hz, hz_oct, q;            /* band-pass centre, location spread, Q */
    double decay_ms;
    double regular;                  /* 0 Poisson .. 1 periodic */
    double group_per_min, group_s;   /* groups per minute and length; 0: continuous */
    double ring_hz, ring_db;         /* an extra resonance (metal); 0 dB: none */
    double wet, absent_loc, absent_seg;
};

static void click_add(const struct scene *s, struct rng *S, float *x, long t, double decay_s,
                      float amp)
{
    long len = secs(s, 5 * decay_s) + 1;
    float d = (float)synth_exp2(-1.44269504088896340736 / (decay_s * s->sr)), e = amp;
    for (long i = t; i < t + len && i < s->n; i += 1) {
        if (i >= 0) x[i] += e * (float)sym(S);
        e *= d;
    }
}

static void clicks_span(const struct scene *s, struct rng *S, float *x, long t0, long t1,
                        double rate, double regular, double decay_s, double lvl, float comp)
{
    double span = (double)(t1 - t0) / s->sr;
    if (regular <= 0) {
        int k = synth_poisson(S, rate * span);
        for (int i = 0; i < k; i++) {
            long t = t0 + (long)(rng_uniform(S) * (double)(t1 - t0));
            click_add(s, S, x, t, decay_s, (float)synth_db(lvl - 6 * rng_uniform(S)) * comp);
        }
        return;
    }
    double period = 1 / rate, t = rng_uniform(S) * period;
    while (t < span) {
        double jit = (1 - regular) * period * sym(S) * 0.5;
        click_add(s, S, x, t0 + secs(s, t + jit), decay_s,
                  (float)synth_db(lvl - 4 * rng_uniform(S)) * comp);
        t += period;
    }
}

static void ing_clicks(struct scene *s, int slot, const struct clicks *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double rate = p->rate_hz * synth_exp2(p->rate_oct * sym(&L));
    double lvl = p->level_db + p->level_spread * sym(&L);
    double hz = p->hz * synth_exp2(p->hz_oct * sym(&L)),
           decay = p->decay_ms * 1e-3 * synth_unif(&L, 0.7, 1.4);
    /* Band-pass keeps ~(pi/2)(hz/q) / (sr/2) of white noise's power; uniform noise has
     * power 1/3. comp makes a click's burst come out at about lvl. */
    double frac = 1.5708 * hz / p->q / (0.5 * s->sr);
    float comp = (float)sqrt(3.0 / (frac < 1 ? frac : 1));
    float *x = s->b;
    zero(x, s->n);
    if (p->group_per_min > 0) {
        double dur = (double)s->n / s->sr;
        int ng = synth_poisson(&S, p->group_per_min / 60 * (dur + p->group_s));
        for (int g = 0; g < ng; g++) {
            double st = synth_unif(&S, -p->group_s, dur),
                   len = p->group_s * synth_unif(&S, 0.5, 1.5);
            long t0 = secs(s, st), t1 = secs(s, st + len);
            clicks_span(s, &S, x, t0, t1, rate, p->regular, decay, lvl, comp);
        }
    } else {
        clicks_span(s, &S, x, 0, s->n, rate, p->regular, decay, lvl, comp);
    }
    struct synth_biquad f;
    synth_biquad_init(&f, SYNTH_BANDPASS, hz, p->q, 0, s->sr);
    synth_biquad_run(&f, x, s->n);
    if (p->ring_db != 0) {
        synth_biquad_init(&f, SYNTH_PEAK, p->ring_hz * synth_exp2(0.2 * sym(&L)), 12, p->ring_db,
                          s->sr);
        synth_biquad_run(&f, x, s->n);
    }
    emit(s, x, 1, (float)p->wet);
}

/* Birdsong: each location has 1-3 species (a syllable's pitch, sweep, length, vibrato, a
 * song's length); songs arrive as a Poisson stream at random distances. */
struct birds {
    double rate_per_min, rate_oct;   /* songs per minute */
    double level_db, level_spread;
    double hz_lo, hz_hi;             /* species' base pitch range */
    double wet, absent_loc, absent_seg;
};

struct species {
    double hz, sweep_oct, syl_s, gap_s, vib_hz, vib_depth;
    int n_syl;
};

static void ing_birds(struct scene *s, int slot, const struct birds *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double rate = p->rate_per_min * synth_exp2(p->rate_oct * sym(&L)) / 60;
    double lvl = p->level_db + p->level_spread * sym(&L);
    struct species sp[3];
    int n_sp = 1 + (int)rng_below(&L, 3);
    for (int i = 0; i < n_sp; i++) {
        sp[i].hz = synth_unif(&L, p->hz_lo, p->hz_hi);
        sp[i].sweep_oct = synth_unif(&L, -0.9, 0.9);
        sp[i].syl_s = synth_unif(&L, 0.03, 0.16);
        sp[i].gap_s = synth_unif(&L, 0.02, 0.12);
        sp[i].vib_hz = rng_uniform(&L) < 0.5 ? synth_unif(&L, 15, 60) : 0;
        sp[i].vib_depth = synth_unif(&L, 0.02, 0.12);
        sp[i].n_syl = 2 + (int)rng_below(&L, 9);
    }
    double dur = (double)s->n / s->sr;
    int ns = synth_poisson(&S, rate * (dur + 2));
    float *x = s->b;
    zero(x, s->n);
    for (int k = 0; k < ns; k++) {
        const struct species *q = &sp[rng_below(&S, (uint64_t)n_sp)];
        double t = synth_unif(&S, -2, dur);
        float g = (float)synth_db(lvl - 12 * rng_uniform(&S));
        int nsyl = q->n_syl + (int)rng_below(&S, 3) - 1;
        for (int y = 0; y < nsyl; y++, t += q->syl_s + q->gap_s) {
            long t0 = secs(s, t), len = secs(s, q->syl_s);
            if (t0 >= s->n) break;
            if (t0 + len <= 0) continue;
            double f_start = q->hz * synth_exp2(0.05 * sym(&S)),
                   f_end = f_start * synth_exp2(q->sweep_oct);
            double inc = 4294967296.0 * f_start / s->sr,
                   dinc = 4294967296.0 * (f_end - f_start) / s->sr / (double)len;
            uint32_t vph = 0, vinc = synth_phase_inc(q->vib_hz, s->sr), eph = 0;
            uint32_t einc = (uint32_t)(2147483648.0 / (double)len);
            uint32_t ph = 0;
            float vd = (float)(q->vib_depth * inc);
            for (long i = 0; i < len; i++) {
                float e = synth_sine_at(s->sine, eph);
                eph += einc;
                double cur = inc + dinc * (double)i;
                if (cur > 0.45 * 4294967296.0) cur = 0.45 * 4294967296.0;
                float vib = q->vib_hz > 0 ? vd * synth_sine_at(s->sine, vph) : 0;
                vph += vinc;
                long ti = t0 + i;
                if (ti >= 0 && ti < s->n)
                    x[ti] += g * e * e * (synth_sine_at(s->sine, ph) * 0.9f +
                                          0.1f * synth_sine_at(s->sine, ph * 2));
                ph += (uint32_t)(cur + (double)vib);
            }
        }
    }
    emit(s, x, 1, (float)p->wet);
}

/* A public-address chime (two to four notes of the location's tune) and, mostly, an
 * announcement through a band-limited loudspeaker. */
struct chime {
    double per_min;                  /* chimes per minute */
    double level_db, level_spread;
    double announce;                 /* probability of an announcement after a chime */
    double wet, absent_loc, absent_seg;
};

static void ing_chime(struct scene *s, int slot, const struct chime *p)
{
    if (halted(s)) return;
    static const double ratio[4] = {1, 2, 3, 4.2}, amp[4] = {1, 0.25, 0.1, 0.05};
    static const int scale[5] = {0, 4, 7, 9, 12};
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L);
    double root = synth_unif(&L, 450, 900), spacing = synth_unif(&L, 0.3, 0.55);
    int n_notes = 2 + (int)rng_below(&L, 3), tune[4];
    for (int i = 0; i < n_notes; i++) tune[i] = scale[rng_below(&L, 5)];
    double f0 = synth_unif(&L, 95, 230);
    double dur = (double)s->n / s->sr;
    int nc = synth_poisson(&S, p->per_min / 60 * (dur + 4));
    float *x = s->b, *y = s->c, *fric = s->a;
    zero(x, s->n);
    zero(y, s->n);
    zero(fric, s->n);
    long talked = 0; /* samples of announcement */
    for (int c = 0; c < nc; c++) {
        double t = synth_unif(&S, -4, dur);
        float g = (float)synth_db(lvl);
        for (int i = 0; i < n_notes; i++)
            tone_add(s, x, secs(s, t + i * spacing), secs(s, 1.6),
                     root * synth_exp2(tune[i] / 12.0), ratio, amp, 4, 0, 0.005, 0.6, g);
        if (rng_uniform(&S) < p->announce) {
            long v0 = secs(s, t + n_notes * spacing + 0.3), v1 = v0 + secs(s, synth_unif(&S, 2, 5));
            if (v0 < 0) v0 = 0;
            if (v1 > s->n) v1 = s->n;
            if (v0 < v1) {
                voice_add(s, &S, y, fric, v0 - v0 % SYNTH_BLOCK, v1, f0, f0 > 165 ? 1.17 : 1.0, 4.5,
                          0.97, 1);
                talked += v1 - v0;
            }
        }
    }
    if (talked > 0) { /* the loudspeaker: 300 Hz - 4 kHz with a 2 kHz bump */
        struct synth_biquad f;
        synth_biquad_init(&f, SYNTH_HIGHPASS, 300, 0.9, 0, s->sr);
        synth_biquad_run(&f, y, s->n);
        synth_biquad_init(&f, SYNTH_LOWPASS, 4000, 0.9, 0, s->sr);
        synth_biquad_run(&f, y, s->n);
        synth_biquad_init(&f, SYNTH_PEAK, 2000, 1.5, 5, s->sr);
        synth_biquad_run(&f, y, s->n);
        /* The announcement 3 dB under the chime while it talks (RMS over its windows). */
        double ry = synth_rms(y, s->n) * sqrt((double)s->n / (double)talked);
        if (ry > 1e-12) synth_mix(x, y, s->n, (float)(synth_db(lvl - 3) / ry));
    }
    emit(s, x, 1, (float)p->wet);
}

/* Short tonal events: tram bells, car horns, brake squeals, dog barks, door hiss. */
enum tonal_kind { TONAL_BELL, TONAL_HORN, TONAL_SQUEAL, TONAL_BARK, TONAL_HISS };

struct tonal {
    enum tonal_kind kind;
    double per_min;
    double level_db, level_spread;
    double wet, absent_loc, absent_seg;
};

static void ing_tonal(struct scene *s, int slot, const struct tonal *p)
{
    if (halted(s)) return;
    static const double bell_r[4] = {1, 2.76, 5.40, 8.93}, bell_a[4] = {1, 0.6, 0.4, 0.2};
    static const double horn_r[6] = {1, 2, 3, 4, 5, 6}, horn_a[6] = {1, 0.5, 0.6, 0.3, 0.35, 0.2};
    static const double sq_r[2] = {1, 2}, sq_a[2] = {1, 0.3};
    static const double bark_r[6] = {1, 2, 3, 4, 5, 6}, bark_a[6] = {0.6, 1, 0.8, 0.5, 0.3, 0.2};
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L);
    double fl = synth_exp2(0.25 * sym(&L)); /* the location's bell / horn / dog */
    double dur = (double)s->n / s->sr;
    int ne = synth_poisson(&S, p->per_min / 60 * (dur + 2));
    float *x = s->b;
    zero(x, s->n);
    for (int e = 0; e < ne; e++) {
        double t = synth_unif(&S, -2, dur);
        float g = (float)synth_db(lvl - 6 * rng_uniform(&S));
        switch (p->kind) {
        case TONAL_BELL: {
            int k = 2 + (int)rng_below(&S, 2);
            for (int i = 0; i < k; i++)
                tone_add(s, x, secs(s, t + 0.22 * i), secs(s, 1.5), 1200 * fl, bell_r, bell_a, 4, 0,
                         0.002, 0.35, g);
            break;
        }
        case TONAL_HORN: {
            long len = secs(s, synth_unif(&S, 0.2, 0.9));
            tone_add(s, x, secs(s, t), len, 400 * fl, horn_r, horn_a, 6, 0, 0.02, 0, g * 0.5f);
            tone_add(s, x, secs(s, t), len, 500 * fl, horn_r, horn_a, 6, 0, 0.02, 0, g * 0.5f);
            break;
        }
        case TONAL_SQUEAL: {
            long len = secs(s, synth_unif(&S, 0.6, 2.5));
            tone_add(s, x, secs(s, t), len, 3000 * fl * synth_exp2(0.4 * sym(&S)), sq_r, sq_a, 2,
                     0.1 * sym(&S), 0.25, 0, g);
            break;
        }
        case TONAL_BARK: {
            int k = 1 + (int)rng_below(&S, 4);
            for (int i = 0; i < k; i++)
                tone_add(s, x, secs(s, t + 0.35 * i), secs(s, synth_unif(&S, 0.1, 0.22)),
                         500 * fl, bark_r, bark_a, 6, -0.4, 0.01, 0.08, g);
            break;
        }
        default: { /* TONAL_HISS: pneumatic doors, white noise with a fast attack */
            long t0 = secs(s, t), len = secs(s, synth_unif(&S, 0.4, 1.4));
            float d = (float)synth_exp2(-1.44269504088896340736 / (0.35 * s->sr)), a = g * 1.7f;
            for (long i = 0; i < len; i++, a *= d) {
                float r = (float)sym(&S);
                if (t0 + i >= 0 && t0 + i < s->n) x[t0 + i] += a * r;
            }
            break;
        }
        }
    }
    struct synth_biquad f;
    if (p->kind == TONAL_BARK) { /* the dog's mouth */
        synth_biquad_init(&f, SYNTH_PEAK, 1100 * fl, 1.2, 8, s->sr);
        synth_biquad_run(&f, x, s->n);
    } else if (p->kind == TONAL_HISS) {
        synth_biquad_init(&f, SYNTH_HIGHPASS, 1800, 0.707, 0, s->sr);
        synth_biquad_run(&f, x, s->n);
    }
    emit(s, x, 1, (float)p->wet);
}

/* Background music: chord pads in the location's key, a bass on the beat and a plucked
 * melody, through a ceiling loudspeaker (low-passed). */
struct music {
    double level_db, level_spread, lp_hz;
    double wet, absent_loc, absent_seg;
};

static void ing_music(struct scene *s, int slot, const struct music *p)
{
    if (halted(s)) return;
    static const int progs[3][4][3] = {
        {{0, 4, 7}, {7, 11, 14}, {9, 12, 16}, {5, 9, 12}},
        {{0, 4, 7}, {5, 9, 12}, {7, 11, 14}, {0, 4, 7}},
        {{9, 12, 16}, {5, 9, 12}, {0, 4, 7}, {7, 11, 14}},
    };
    static const int major[7] = {0, 2, 4, 5, 7, 9, 11};
    static const double pad_r[3] = {1, 2, 3}, pad_a[3] = {1, 0.35, 0.15};
    static const double pl_r[4] = {1, 2, 3, 4}, pl_a[4] = {1, 0.5, 0.3, 0.15};
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L);
    double root = 110 * synth_exp2((double)rng_below(&L, 12) / 12),
           chord_s = synth_unif(&L, 1.6, 2.6);
    int prog = (int)rng_below(&L, 3), start = (int)rng_below(&S, 4);
    float *x = s->b;
    zero(x, s->n);
    double off = -chord_s * rng_uniform(&S);
    for (int c = 0; off + c * chord_s < (double)s->n / s->sr; c++) {
        const int *ch = progs[prog][(start + c) % 4];
        double t = off + c * chord_s;
        long len = secs(s, chord_s);
        for (int i = 0; i < 3; i++)
            tone_add(s, x, secs(s, t), len, 2 * root * synth_exp2(ch[i] / 12.0), pad_r, pad_a, 3, 0,
                     0.08, 3, 0.3);
        for (int beat = 0; beat < 4; beat++) {
            double tb = t + beat * chord_s / 4;
            tone_add(s, x, secs(s, tb), secs(s, chord_s / 4), root * synth_exp2(ch[0] / 12.0),
                     pad_r, pad_a, 3, 0, 0.01, 0.2, 0.6);
            if (rng_uniform(&S) < 0.7) {
                int deg = major[rng_below(&S, 7)];
                tone_add(s, x, secs(s, tb), secs(s, chord_s / 4), 4 * root * synth_exp2(deg / 12.0),
                         pl_r, pl_a, 4, 0, 0.005, 0.15, 0.35);
            }
        }
    }
    struct synth_biquad f;
    synth_biquad_init(&f, SYNTH_LOWPASS, p->lp_hz * synth_exp2(0.3 * sym(&L)), 0.707, 0, s->sr);
    synth_biquad_run(&f, x, s->n);
    normalise(x, s->n, lvl + sym(&S));
    emit(s, x, 1, (float)p->wet);
}

/* Wind: a low rumble on the microphone and leaves rustling, both following the gusts. */
struct wind {
    double level_db, level_spread;
    double gust_hz, gust_db;
    double rustle_db;                /* leaves relative to the rumble */
    double absent_loc, absent_seg;
};

static void ing_wind(struct scene *s, int slot, const struct wind *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    if (!present(&L, &S, p->absent_loc, p->absent_seg)) return;
    double lvl = p->level_db + p->level_spread * sym(&L) + 2 * sym(&S);
    double gust_db = p->gust_db * synth_unif(&L, 0.6, 1.3), rustle = p->rustle_db + 4 * sym(&L);
    double leaf_hz = synth_oct(&L, 3000, 0.5);
    float *x = s->a;
    struct synth_biquad f;
    synth_wander(&S, s->env, s->nb, p->gust_hz, gust_db, s->sr);
    synth_white(&S, x, s->n, 1);
    synth_colour(x, s->n, 2, s->sr);
    synth_biquad_init(&f, SYNTH_LOWPASS, synth_oct(&L, 180, 0.5), 0.707, 0, s->sr);
    synth_biquad_run(&f, x, s->n);
    synth_biquad_init(&f, SYNTH_HIGHPASS, 25, 0.707, 0, s->sr);
    synth_biquad_run(&f, x, s->n);
    normalise(x, s->n, lvl);
    synth_apply_env(x, s->n, s->env);
    emit(s, x, 1, 0);
    /* Leaves: faster flutter on top of the same gusts, stronger when it blows. */
    synth_wander(&S, s->env2, s->nb, 6, 5, s->sr);
    for (long b = 0; b < s->nb; b++) s->env2[b] *= s->env[b] * s->env[b];
    synth_white(&S, x, s->n, 1);
    synth_biquad_init(&f, SYNTH_BANDPASS, leaf_hz, 0.5, 0, s->sr);
    synth_biquad_run(&f, x, s->n);
    normalise(x, s->n, lvl + rustle);
    synth_apply_env(x, s->n, s->env2);
    emit(s, x, 1, 0);
}

/* ---- speed profiles and rail ------------------------------------------------------- */

/* A ride: speed wanders between targets with limited acceleration, sometimes stopping.
 * Fills s->speed and sets s->prox to 1. */
static void speed_ride(struct scene *s, int slot, double v_max, double stop_prob, double accel)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    double v = synth_unif(&S, 0, v_max), target = synth_unif(&S, 0.2, 1) * v_max;
    if (rng_uniform(&S) < stop_prob) v = 0;
    double dv = accel * synth_unif(&L, 0.7, 1.3) * SYNTH_BLOCK / s->sr;
    long next = (long)(synth_unif(&S, 0.5, 3) * s->sr / SYNTH_BLOCK);
    for (long b = 0; b < s->nb; b++) {
        if (b >= next) {
            target = rng_uniform(&S) < stop_prob ? 0 : synth_unif(&S, 0.2, 1) * v_max;
            next = b + (long)(synth_unif(&S, 1.5, 4) * s->sr / SYNTH_BLOCK);
        }
        double d = target - v;
        v += d > dv ? dv : d < -dv ? -dv : d;
        s->speed[b] = (float)v;
        s->prox[b] = 1;
    }
}

/* A platform: with probability p_train a train arrives (slowing to a stop, coming nearer)
 * or departs (speeding up, going away) at a random time; otherwise nothing is near. */
static void speed_platform(struct scene *s, int slot, double p_train)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    int train = rng_uniform(&S) < p_train, arrive = rng_uniform(&S) < 0.5;
    double dur = (double)s->n / s->sr, tc = synth_unif(&S, 0.5, dur + 2),
           ramp = synth_unif(&S, 5, 9);
    for (long b = 0; b < s->nb; b++) {
        double t = (double)b * SYNTH_BLOCK / s->sr, v = 0, prox = 0;
        if (train && arrive) {
            double u = (tc - t) / ramp;
            v = t < tc ? 0.8 * (u < 1 ? u : 1) : 0;
            prox = t < tc ? 1 / (1 + 9 * u * u) : 1;
        } else if (train) {
            double u = (t - tc + ramp) / ramp; /* departs at tc - ramp: moving during the clip */
            v = u > 0 ? 0.8 * (u < 1 ? u : 1) : 0;
            prox = u > 0 ? 1 / (1 + 9 * u * u) : 1;
        }
        s->speed[b] = (float)v;
        s->prox[b] = (float)prox;
    }
}

/* A train, following s->speed and s->prox: rumble brightening with speed, an electric
 * motor whine rising with it, wheels clattering over rail joints (pairs of clicks, faster
 * with speed), and a roar in tunnels. */
struct rail {
    double rumble_db, whine_db, clatter_db, roar_db;  /* at speed 1, nearness 1 */
    double whine_lo, whine_hi;                        /* Hz at speed 0 and 1 */
    double clatter_hz, roar_hz;
    double level_spread;
    double wet;
};

static void ing_rail(struct scene *s, int slot, const struct rail *p)
{
    if (halted(s)) return;
    struct rng L, S;
    streams(s, slot, &L, &S);
    double spread = p->level_spread * sym(&L);
    double wl = p->whine_lo * synth_exp2(0.3 * sym(&L)),
           wh = p->whine_hi * synth_exp2(0.3 * sym(&L));
    double chz = p->clatter_hz * synth_exp2(0.4 * sym(&L)), car_s = synth_unif(&L, 0.9, 1.4);
    double gap_s = car_s * synth_unif(&L, 0.12, 0.2);
    float *x = s->a, noise[SYNTH_BLOCK];
    zero(x, s->n);
    /* Rumble: low-passed noise, brighter and louder with speed. */
    struct synth_biquad f, r;
    synth_biquad_init(&f, SYNTH_LOWPASS, 150, 0.707, 0, s->sr);
    synth_biquad_init(&r, SYNTH_BANDPASS, p->roar_hz, 0.8, 0, s->sr);
    float rg = (float)synth_db(p->rumble_db + spread), og = (float)synth_db(p->roar_db + spread);
    float wg = (float)synth_db(p->whine_db + spread);
    float e_prev = 0, o_prev = 0, w_prev = 0;
    uint32_t ph[3] = {0};
    for (long b = 0, i0 = 0; i0 < s->n; b++, i0 += SYNTH_BLOCK) {
        long m = s->n - i0 < SYNTH_BLOCK ? s->n - i0 : SYNTH_BLOCK;
        double v = s->speed[b + 1], prox = s->prox[b + 1];
        double cut = 120 + 500 * v;
        synth_biquad_set(&f, SYNTH_LOWPASS, cut, 0.707, 0, s->sr);
        /* White noise keeps ~cut / (sr/2) of its power through the low-pass. */
        float e1 = (float)(rg * (0.3 + 0.7 * v) * prox * sqrt(3.0 * 0.5 * s->sr / cut));
        float o1 = (float)(og * v * prox * sqrt(3.0 * 0.5 * s->sr / (p->roar_hz / 0.8 * 1.57)));
        float w1 = (float)(wg * (v > 0.02 ? sqrt(v) : 0) * prox);
        if (b == 0) e_prev = e1, o_prev = o1, w_prev = w1;
        uint32_t inc[3];
        for (int h = 0; h < 3; h++) inc[h] = synth_phase_inc((wl + (wh - wl) * v) * (h + 1), s->sr);
        synth_white(&S, noise, m, 1);
        float de = (e1 - e_prev) / (float)m, e = e_prev;
        float dO = (o1 - o_prev) / (float)m, o = o_prev;
        float dw = (w1 - w_prev) / (float)m, w = w_prev;
        for (long j = 0; j < m; j++) {
            float y = e * synth_biquad_tick(&f, noise[j]);
            if (p->roar_db > -90) y += o * synth_biquad_tick(&r, noise[j]);
            y += w * (synth_sine_at(s->sine, ph[0]) + 0.5f * synth_sine_at(s->sine, ph[1]) +
                      0.25f * synth_sine_at(s->sine, ph[2])) * 0.8f;
            for (int h = 0; h < 3; h++) ph[h] += inc[h];
            x[i0 + j] += y;
            e += de, o += dO, w += dw;
        }
        e_prev = e1, o_prev = o1, w_prev = w1;
    }
    /* Clatter: a pair of clicks per bogie passing a joint; joints pass at a rate ~ speed. */
    float *c = s->b;
    zero(c, s->n);
    double pos = rng_uniform(&S);
    /* A click's burst at about clatter_db after the band-pass (as ing_clicks). */
    float cg = (float)(synth_db(p->clatter_db + spread) *
                       sqrt(3.0 / (1.5708 * chz / 1.5 / (0.5 * s->sr))));
    for (long b = 0; b < s->nb - 1; b++) {
        double v = s->speed[b];
        pos += v * SYNTH_BLOCK / s->sr / car_s;
        if (pos >= 1 && v > 0.05) {
            pos -= 1;
            long t = b * SYNTH_BLOCK;
            float a = cg * (float)(s->prox[b] * (0.4 + 0.6 * v) * synth_unif(&S, 0.6, 1.0));
            click_add(s, &S, c, t, 0.012, a);
            click_add(s, &S, c, t + secs(s, gap_s / (v + 0.1)), 0.012, a * 0.8f);
        }
    }
    synth_biquad_init(&f, SYNTH_BANDPASS, chz, 1.5, 0, s->sr);
    synth_biquad_run(&f, c, s->n);
    synth_mix(x, c, s->n, 1);
    emit(s, x, 1, (float)p->wet);
}

/* ---- rooms and levels -------------------------------------------------------------- */

/* Reverberate the send bus into the mix: rt60 drawn per location in [rt_lo, rt_hi], the
 * reverberation's RMS level_db relative to the send's. */
static int room(struct scene *s, int slot, double rt_lo, double rt_hi, double size,
                double damp_hz, double level_db)
{
    if (halted(s)) return 0;
    struct rng L, S;
    streams(s, slot, &L, &S);
    double rt = synth_unif(&L, rt_lo, rt_hi), sz = size * synth_unif(&L, 0.8, 1.25);
    double lvl = level_db + 2 * sym(&L);
    double rs = synth_rms(s->wet, s->n);
    if (rs < 1e-12) return 0;
    int st = synth_reverb(s->wet, s->a, s->n, rt, sz, damp_hz * synth_unif(&L, 0.7, 1.4), s->sr);
    if (st) return st;
    double ra = synth_rms(s->a, s->n);
    if (ra > 1e-12) synth_mix(s->mix, s->a, s->n, (float)(synth_db(lvl) * rs / ra));
    return 0;
}

/* ---- the scenes -------------------------------------------------------------------- */

static const char *const class_names[SYNTH_MAX_CLASSES] = {
    "airport", "bus", "metro", "metro_station", "park",
    "public_square", "shopping_mall", "street_pedestrian", "street_traffic", "tram",
};

static const char *const class_text[SYNTH_MAX_CLASSES] = {
    "airport: large hall (RT60 1.6-2.6 s), ventilation, far babble, footsteps on a hard floor, "
    "rolling suitcases, PA chimes with announcements, distant jet roar",
    "bus: diesel engine hum (25-40 Hz harmonics) following stop-and-go speed, cabin rumble, "
    "rattles, door hiss, indicator ticks, a few talkers",
    "metro: train interior at speed: loud rumble, tunnel roar, motor whine, rail clatter, "
    "chime with announcement, a few talkers",
    "metro_station: reverberant platform (RT60 1.8-3 s): ventilation rumble, a train "
    "arriving or departing (rumble, whine, clatter, brake squeal), sparse babble, footsteps, "
    "chimes",
    "park: wind gusts and rustling leaves, birdsong (1-3 species per location), distant "
    "traffic, occasional voices, a dog, gravel footsteps",
    "public_square: open space, distant traffic and babble, a fountain at some locations, "
    "birds, children, sparse footsteps, occasional passing vehicle",
    "shopping_mall: hall (RT60 1.0-1.8 s), background music, babble, footsteps, ventilation, "
    "rare chimes",
    "street_pedestrian: near talkers, dense footsteps, traffic a street away, occasional "
    "scooter or car, some birds",
    "street_traffic: heavy traffic rumble, frequent passing cars, trucks and motorbikes, "
    "horns, idling engines, few talkers",
    "tram: tram interior: quieter rumble, electric motor whine with strong glides, rail "
    "clatter, bell, curve squeal, talkers, street traffic outside",
};

const char *synth_class_name(int k)
{
    return k >= 0 && k < SYNTH_MAX_CLASSES ? class_names[k] : NULL;
}

const char *synth_scene_describe(int k)
{
    return k >= 0 && k < SYNTH_MAX_CLASSES ? class_text[k] : NULL;
}

/* Footsteps on a hard floor; rate and level vary. */
static const struct clicks steps_hard = {
    .rate_hz = 2.5, .rate_oct = 0.6, .level_db = -34, .level_spread = 4, .hz = 1400,
    .hz_oct = 0.4, .q = 1.2, .decay_ms = 14, .wet = 0.6,
};

static int scene_airport(struct scene *s)
{
    ing_bed(s, 1, &(struct bed){.level_db = -36, .level_spread = 3, .colour = 1, .hp_hz = 40,
                                .lp_hz = 1800, .oct = 0.4, .mod_hz = 0.2, .mod_db = 1.5,
                                .wet = 0.3});
    ing_babble(s, 2, &(struct babble){.level_db = -31, .level_spread = 3, .voices = 8,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 240, .rate_hz = 4.5,
                                      .talk = 0.6, .spread_db = 12, .lp_hz = 3500, .wet = 0.8});
    ing_bed(s, 3, &(struct bed){.level_db = -37, .level_spread = 3, .colour = 1, .hp_hz = 200,
                                .lp_hz = 2500, .mod_hz = 4, .mod_db = 2, .wet = 1});
    ing_clicks(s, 4, &steps_hard);
    ing_clicks(s, 5, &(struct clicks){.rate_hz = 11, .rate_oct = 0.3, .level_db = -42,
                                      .level_spread = 3, .hz = 700, .hz_oct = 0.3, .q = 2,
                                      .decay_ms = 8, .regular = 0.8, .group_per_min = 8,
                                      .group_s = 3, .wet = 0.5, .absent_loc = 0.2});
    ing_chime(s, 6, &(struct chime){.per_min = 4, .level_db = -26, .level_spread = 3,
                                    .announce = 0.8, .wet = 1});
    ing_bed(s, 7, &(struct bed){.level_db = -40, .level_spread = 4, .colour = 2, .hp_hz = 30,
                                .lp_hz = 500, .oct = 0.3, .mod_hz = 0.15, .mod_db = 6,
                                .absent_loc = 0.3, .absent_seg = 0.5});
    return room(s, 8, 1.6, 2.6, 2.5, 3000, -3);
}

static int scene_bus(struct scene *s)
{
    speed_ride(s, 1, 1, 0.3, 0.25);
    ing_hum(s, 2, &(struct hum){.level_db = -27, .level_spread = 3, .f0 = 30, .f0_oct = 0.25,
                                .n_harm = 14, .tilt_db = 1.6, .timbre_db = 4, .drift_oct = 0.03,
                                .drift_hz = 0.5, .speed_oct = 1.2, .speed_db = 6, .wet = 0.2});
    ing_bed(s, 3, &(struct bed){.level_db = -31, .level_spread = 3, .colour = 2, .hp_hz = 30,
                                .lp_hz = 450, .oct = 0.3, .mod_hz = 0.5, .mod_db = 2});
    ing_clicks(s, 4, &(struct clicks){.rate_hz = 14, .rate_oct = 0.5, .level_db = -40,
                                      .level_spread = 4, .hz = 2500, .hz_oct = 0.4, .q = 4,
                                      .decay_ms = 6, .group_per_min = 20, .group_s = 1.5,
                                      .ring_hz = 3200, .ring_db = 10});
    ing_tonal(s, 5, &(struct tonal){.kind = TONAL_HISS, .per_min = 3, .level_db = -30,
                                    .level_spread = 3, .wet = 0.2});
    ing_clicks(s, 6, &(struct clicks){.rate_hz = 1.5, .level_db = -36, .level_spread = 3,
                                      .hz = 3000, .hz_oct = 0.2, .q = 3, .decay_ms = 4,
                                      .regular = 1, .group_per_min = 5, .group_s = 6,
                                      .absent_loc = 0.3});
    ing_babble(s, 7, &(struct babble){.level_db = -33, .level_spread = 4, .voices = 3,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 250, .rate_hz = 4.5,
                                      .talk = 0.6, .spread_db = 8, .wet = 0.3, .absent_seg = 0.15});
    return room(s, 8, 0.25, 0.45, 0.4, 4000, -8);
}

static int scene_metro(struct scene *s)
{
    speed_ride(s, 1, 1, 0.12, 0.2);
    ing_rail(s, 2, &(struct rail){.rumble_db = -23, .whine_db = -33, .clatter_db = -31,
                                  .roar_db = -29, .whine_lo = 250, .whine_hi = 900,
                                  .clatter_hz = 300, .roar_hz = 1200, .level_spread = 3,
                                  .wet = 0.2});
    ing_bed(s, 3, &(struct bed){.level_db = -35, .level_spread = 3, .colour = 1, .hp_hz = 60,
                                .lp_hz = 3000, .oct = 0.3, .mod_hz = 0.3, .mod_db = 2});
    ing_babble(s, 4, &(struct babble){.level_db = -36, .level_spread = 4, .voices = 3,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 250, .rate_hz = 4.5,
                                      .talk = 0.5, .spread_db = 8, .wet = 0.3, .absent_seg = 0.2});
    ing_chime(s, 5, &(struct chime){.per_min = 2, .level_db = -28, .level_spread = 3,
                                    .announce = 0.9, .wet = 0.3});
    ing_tonal(s, 6, &(struct tonal){.kind = TONAL_HISS, .per_min = 1, .level_db = -30,
                                    .level_spread = 3, .wet = 0.2});
    return room(s, 7, 0.3, 0.5, 0.5, 3000, -8);
}

static int scene_metro_station(struct scene *s)
{
    speed_platform(s, 1, 0.65);
    ing_rail(s, 2, &(struct rail){.rumble_db = -22, .whine_db = -30, .clatter_db = -29,
                                  .roar_db = -100, .whine_lo = 250, .whine_hi = 900,
                                  .clatter_hz = 300, .roar_hz = 1200, .level_spread = 3,
                                  .wet = 0.7});
    ing_bed(s, 3, &(struct bed){.level_db = -34, .level_spread = 3, .colour = 2, .hp_hz = 30,
                                .lp_hz = 700, .oct = 0.4, .mod_hz = 0.3, .mod_db = 3, .wet = 0.5});
    ing_babble(s, 4, &(struct babble){.level_db = -34, .level_spread = 3, .voices = 4,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 240, .rate_hz = 4.5,
                                      .talk = 0.5, .spread_db = 12, .lp_hz = 4000, .wet = 0.8});
    ing_clicks(s, 5, &(struct clicks){.rate_hz = 1.5, .rate_oct = 0.6, .level_db = -37,
                                      .level_spread = 4, .hz = 1200, .hz_oct = 0.4, .q = 1.2,
                                      .decay_ms = 14, .wet = 0.8});
    ing_chime(s, 6, &(struct chime){.per_min = 3, .level_db = -27, .level_spread = 3,
                                    .announce = 0.8, .wet = 1});
    ing_tonal(s, 7, &(struct tonal){.kind = TONAL_SQUEAL, .per_min = 2, .level_db = -32,
                                    .level_spread = 4, .wet = 1, .absent_seg = 0.4});
    return room(s, 8, 1.8, 3.0, 2.2, 2500, -2);
}

static int scene_park(struct scene *s)
{
    ing_wind(s, 1, &(struct wind){.level_db = -36, .level_spread = 5, .gust_hz = 0.4,
                                  .gust_db = 9, .rustle_db = -4});
    ing_birds(s, 2, &(struct birds){.rate_per_min = 14, .rate_oct = 0.8, .level_db = -30,
                                    .level_spread = 4, .hz_lo = 2000, .hz_hi = 6000});
    ing_bed(s, 3, &(struct bed){.level_db = -43, .level_spread = 4, .colour = 2, .hp_hz = 30,
                                .lp_hz = 300, .oct = 0.4, .mod_hz = 0.2, .mod_db = 3});
    ing_babble(s, 4, &(struct babble){.level_db = -41, .level_spread = 4, .voices = 2,
                                      .voices_spread = 1, .f0_lo = 100, .f0_hi = 380,
                                      .rate_hz = 4.5, .talk = 0.5, .spread_db = 10, .lp_hz = 4000,
                                      .absent_loc = 0.2, .absent_seg = 0.4});
    ing_tonal(s, 5, &(struct tonal){.kind = TONAL_BARK, .per_min = 3, .level_db = -32,
                                    .level_spread = 5, .absent_loc = 0.5, .absent_seg = 0.5});
    ing_clicks(s, 6, &(struct clicks){.rate_hz = 1.8, .level_db = -42, .level_spread = 4,
                                      .hz = 3000, .hz_oct = 0.3, .q = 0.7, .decay_ms = 25,
                                      .regular = 0.8, .group_per_min = 6, .group_s = 4,
                                      .absent_loc = 0.4});
    return 0;
}

static int scene_public_square(struct scene *s)
{
    ing_bed(s, 1, &(struct bed){.level_db = -38, .level_spread = 3, .colour = 2, .hp_hz = 30,
                                .lp_hz = 350, .oct = 0.4, .mod_hz = 0.2, .mod_db = 3});
    ing_babble(s, 2, &(struct babble){.level_db = -35, .level_spread = 3, .voices = 6,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 260, .rate_hz = 4.5,
                                      .talk = 0.6, .spread_db = 14, .lp_hz = 2500, .wet = 0.3});
    ing_bed(s, 3, &(struct bed){.level_db = -34, .level_spread = 4, .colour = 0, .hp_hz = 600,
                                .lp_hz = 6000, .oct = 0.3, .mod_hz = 18, .mod_db = 4,
                                .absent_loc = 0.5});
    ing_birds(s, 4, &(struct birds){.rate_per_min = 4, .rate_oct = 0.6, .level_db = -38,
                                    .level_spread = 4, .hz_lo = 1500, .hz_hi = 4500,
                                    .absent_loc = 0.2});
    ing_babble(s, 5, &(struct babble){.level_db = -38, .level_spread = 4, .voices = 2,
                                      .voices_spread = 1, .f0_lo = 250, .f0_hi = 400, .rate_hz = 5,
                                      .talk = 0.5, .spread_db = 8, .absent_loc = 0.3,
                                      .absent_seg = 0.5});
    ing_clicks(s, 6, &(struct clicks){.rate_hz = 1.2, .rate_oct = 0.5, .level_db = -40,
                                      .level_spread = 3, .hz = 1000, .hz_oct = 0.3, .q = 1.2,
                                      .decay_ms = 15});
    ing_passby(s, 7, &(struct passby){.rate_per_min = 1, .rate_oct = 0.5, .level_db = -36,
                                      .level_spread = 3, .lp_hz = 1500, .truck_frac = 0.1,
                                      .moto_frac = 0.2});
    return room(s, 8, 0.5, 0.9, 1.5, 4000, -12);
}

static int scene_shopping_mall(struct scene *s)
{
    ing_bed(s, 1, &(struct bed){.level_db = -38, .level_spread = 3, .colour = 1, .hp_hz = 50,
                                .lp_hz = 2500, .oct = 0.4, .mod_hz = 0.2, .mod_db = 1, .wet = 0.3});
    ing_music(s, 2, &(struct music){.level_db = -33, .level_spread = 4, .lp_hz = 5000,
                                    .wet = 0.6, .absent_loc = 0.1});
    ing_babble(s, 3, &(struct babble){.level_db = -30, .level_spread = 3, .voices = 7,
                                      .voices_spread = 2, .f0_lo = 95, .f0_hi = 300, .rate_hz = 4.5,
                                      .talk = 0.6, .spread_db = 10, .lp_hz = 5000, .wet = 0.6});
    ing_clicks(s, 4, &(struct clicks){.rate_hz = 3.5, .rate_oct = 0.5, .level_db = -37,
                                      .level_spread = 3, .hz = 1000, .hz_oct = 0.4, .q = 1.2,
                                      .decay_ms = 14, .wet = 0.5});
    ing_chime(s, 5, &(struct chime){.per_min = 0.8, .level_db = -30, .level_spread = 3,
                                    .announce = 0.5, .wet = 1});
    return room(s, 6, 1.0, 1.8, 1.6, 3500, -5);
}

static int scene_street_pedestrian(struct scene *s)
{
    ing_bed(s, 1, &(struct bed){.level_db = -36, .level_spread = 3, .colour = 2, .hp_hz = 30,
                                .lp_hz = 450, .oct = 0.4, .mod_hz = 0.3, .mod_db = 3});
    ing_babble(s, 2, &(struct babble){.level_db = -30, .level_spread = 3, .voices = 5,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 260, .rate_hz = 4.5,
                                      .talk = 0.6, .spread_db = 10, .wet = 0.2});
    ing_clicks(s, 3, &(struct clicks){.rate_hz = 4.5, .rate_oct = 0.4, .level_db = -31,
                                      .level_spread = 3, .hz = 900, .hz_oct = 0.4, .q = 1.0,
                                      .decay_ms = 16, .wet = 0.2});
    ing_passby(s, 4, &(struct passby){.rate_per_min = 2.5, .rate_oct = 0.6, .level_db = -32,
                                      .level_spread = 3, .lp_hz = 2000, .truck_frac = 0.1,
                                      .moto_frac = 0.4});
    ing_birds(s, 5, &(struct birds){.rate_per_min = 2, .rate_oct = 0.5, .level_db = -42,
                                    .level_spread = 3, .hz_lo = 2000, .hz_hi = 5000,
                                    .absent_loc = 0.4});
    ing_music(s, 6, &(struct music){.level_db = -42, .level_spread = 3, .lp_hz = 3000,
                                    .absent_loc = 0.6, .absent_seg = 0.3});
    return room(s, 7, 0.4, 0.8, 1.2, 4000, -12);
}

static int scene_street_traffic(struct scene *s)
{
    ing_bed(s, 1, &(struct bed){.level_db = -27, .level_spread = 3, .colour = 2, .hp_hz = 25,
                                .lp_hz = 600, .oct = 0.4, .mod_hz = 0.3, .mod_db = 3});
    ing_passby(s, 2, &(struct passby){.rate_per_min = 16, .rate_oct = 0.5, .level_db = -21,
                                      .level_spread = 3, .lp_hz = 2500, .truck_frac = 0.25,
                                      .moto_frac = 0.15});
    ing_tonal(s, 3, &(struct tonal){.kind = TONAL_HORN, .per_min = 1, .level_db = -28,
                                    .level_spread = 4, .absent_seg = 0.3});
    ing_hum(s, 4, &(struct hum){.level_db = -35, .level_spread = 3, .f0 = 28, .f0_oct = 0.3,
                                .n_harm = 10, .tilt_db = 2, .timbre_db = 4, .drift_oct = 0.02,
                                .drift_hz = 0.5, .absent_seg = 0.5});
    ing_babble(s, 5, &(struct babble){.level_db = -42, .level_spread = 3, .voices = 2,
                                      .voices_spread = 1, .f0_lo = 90, .f0_hi = 250, .rate_hz = 4.5,
                                      .talk = 0.5, .spread_db = 6, .absent_seg = 0.4});
    ing_clicks(s, 6, &(struct clicks){.rate_hz = 1, .rate_oct = 0.5, .level_db = -42,
                                      .level_spread = 3, .hz = 900, .hz_oct = 0.3, .q = 1.0,
                                      .decay_ms = 16});
    return room(s, 7, 0.3, 0.6, 1.2, 4000, -15);
}

static int scene_tram(struct scene *s)
{
    speed_ride(s, 1, 0.8, 0.3, 0.3);
    ing_rail(s, 2, &(struct rail){.rumble_db = -28, .whine_db = -31, .clatter_db = -31,
                                  .roar_db = -100, .whine_lo = 200, .whine_hi = 1400,
                                  .clatter_hz = 450, .roar_hz = 1200, .level_spread = 3,
                                  .wet = 0.2});
    ing_tonal(s, 3, &(struct tonal){.kind = TONAL_BELL, .per_min = 2, .level_db = -30,
                                    .level_spread = 3, .wet = 0.3, .absent_seg = 0.3});
    ing_babble(s, 4, &(struct babble){.level_db = -32, .level_spread = 4, .voices = 4,
                                      .voices_spread = 2, .f0_lo = 90, .f0_hi = 260, .rate_hz = 4.5,
                                      .talk = 0.6, .spread_db = 8, .wet = 0.3});
    ing_tonal(s, 5, &(struct tonal){.kind = TONAL_SQUEAL, .per_min = 1.5, .level_db = -36,
                                    .level_spread = 4, .absent_seg = 0.5});
    ing_bed(s, 6, &(struct bed){.level_db = -38, .level_spread = 3, .colour = 2, .hp_hz = 30,
                                .lp_hz = 600, .oct = 0.3, .mod_hz = 0.3, .mod_db = 4});
    return room(s, 7, 0.3, 0.5, 0.5, 4000, -8);
}

static int (*const scenes[SYNTH_MAX_CLASSES])(struct scene *) = {
    scene_airport, scene_bus, scene_metro, scene_metro_station, scene_park,
    scene_public_square, scene_shopping_mall, scene_street_pedestrian, scene_street_traffic,
    scene_tram,
};

/* ---- work and rendering ------------------------------------------------------------ */

struct synth_work *synth_work_create(long n)
{
    struct synth_work *w = mem_calloc(1, sizeof *w);
    if (!w) return NULL;
    long nb = n / SYNTH_BLOCK + 2;
    w->n = n;
    float **bufs[5] = {&w->mix, &w->wet, &w->a, &w->b, &w->c};
    for (int i = 0; i < 5; i++)
        if (!(*bufs[i] = mem_alloc((size_t)n * sizeof(float)))) goto fail;
    float **ctl[4] = {&w->env, &w->env2, &w->speed, &w->prox};
    for (int i = 0; i < 4; i++)
        if (!(*ctl[i] = mem_calloc((size_t)nb, sizeof(float)))) goto fail;
    synth_sine_table(w->sine);
    return w;
fail:
    synth_work_destroy(w);
    return NULL;
}

void synth_work_destroy(struct synth_work *w)
{
    if (!w) return;
    mem_free(w->mix), mem_free(w->wet), mem_free(w->a), mem_free(w->b), mem_free(w->c);
    mem_free(w->env), mem_free(w->env2), mem_free(w->speed), mem_free(w->prox);
    mem_free(w);
}

int synth_scene_render(int k, const struct rng *loc, const struct rng *seg, double sr, float *x,
                       long n, struct synth_work *w)
{
    CHECK(k >= 0 && k < SYNTH_MAX_CLASSES && n <= w->n && n > 0);
    struct scene s = {
        .sr = sr, .n = n, .nb = n / SYNTH_BLOCK + 2,
        .mix = w->mix, .wet = w->wet, .a = w->a, .b = w->b, .c = w->c,
        .env = w->env, .env2 = w->env2, .speed = w->speed, .prox = w->prox,
        .sine = w->sine, .loc = *loc, .seg = *seg, .w = w,
    };
    zero(s.mix, n);
    zero(s.wet, n);
    for (long b = 0; b < s.nb; b++) s.speed[b] = 0, s.prox[b] = 0;
    int st = scenes[k](&s);
    if (st) return st;
    if (s.stopped) return status_set(STATUS_CANCELLED, "synth: cancelled");
    /* The location's overall level (recording distance, gain) and the segment's. */
    struct rng L, S;
    streams(&s, 99, &L, &S);
    float g = (float)synth_db(3 * sym(&L) + sym(&S));
    for (long i = 0; i < n; i++) x[i] = g * s.mix[i];
    return 0;
}
