/* synth_device.c: the recording devices, a (reference) and eight simulated ones.
 *
 * Key idea: as DCASE's simulated devices do, a device colours the same sound field with a
 * fixed chain: a frequency response (high-pass, low-pass, peaking and shelving biquads), a
 * gain, a soft saturation that can be asymmetric (even harmonics), and a noise floor. Device
 * a is nearly transparent; b and c are mild (like the real phones of TAU 2020); s1-s3 are
 * stronger; s4-s6, never in the training split by default, are the most different (tinny,
 * muffled, strongly resonant), so accuracy on them measures generalisation to unseen devices.
 *
 * The saturation is tanh's [3/3] Pade approximant x (27 + x^2) / (27 + 9 x^2), clamped at
 * |x| = 3 where it reaches +-1 with zero slope: rational, so bit-reproducible.
 *
 * ref: Heittola, Mesaros, Virtanen, "Acoustic scene classification in DCASE 2020 challenge:
 *      generalization across devices and low complexity solutions" (DCASE 2020), section 2
 *      (TAU 2020 Mobile: real devices A, B, C; simulated S1-S11 from impulse responses and
 *      dynamic range compression).
 */
#include "synth_internal.h"

#include "basin/core/status.h"
#include "basin/data/synth.h"

enum { EQ_NONE, EQ_PEAK, EQ_LOWSHELF, EQ_HIGHSHELF };

struct device {
    const char *name;
    double gain_db;
    double hp_hz, hp_q;          /* 0: none */
    double lp_hz, lp_q;          /* 0: none */
    struct {
        int kind;
        double hz, q, db;
    } eq[3];
    double noise_db;             /* noise floor RMS, dBFS (pink when noise_pink) */
    int noise_pink;
    double drive;                /* saturation drive; 0: linear */
    double asym;                 /* bias into the saturation: even harmonics */
    const char *text;
};

#define PEAK(hz, q, db) {EQ_PEAK, hz, q, db}
#define LOWSHELF(hz, db) {EQ_LOWSHELF, hz, 0.7, db}
#define HIGHSHELF(hz, db) {EQ_HIGHSHELF, hz, 0.7, db}

static const struct device devices[SYNTH_MAX_DEVICES] = {
    {.name = "a", .hp_hz = 20, .hp_q = 0.707, .noise_db = -88,
     .text = "a: reference: flat from 20 Hz, noise floor -88 dBFS, linear"},
    {.name = "b", .gain_db = -2, .hp_hz = 110, .hp_q = 0.8,
     .eq = {PEAK(3000, 1.2, 4), HIGHSHELF(6000, -6)}, .noise_db = -72, .drive = 1.5, .asym = 0.1,
     .text = "b: high-pass 110 Hz, +4 dB at 3 kHz, -6 dB shelf above 6 kHz, noise -72 dBFS, mild "
             "asymmetric saturation"},
    {.name = "c", .gain_db = 1, .hp_hz = 70, .hp_q = 0.707, .lp_hz = 9000, .lp_q = 0.707,
     .eq = {PEAK(800, 1, -3), PEAK(4000, 1.5, 3)}, .noise_db = -70, .noise_pink = 1, .drive = 2,
     .asym = 0.05,
     .text = "c: high-pass 70 Hz, low-pass 9 kHz, -3 dB at 800 Hz, +3 dB at 4 kHz, pink noise "
             "-70 dBFS, saturation"},
    {.name = "s1", .hp_hz = 200, .hp_q = 0.707, .eq = {PEAK(1500, 1, 6), HIGHSHELF(8000, -8)},
     .noise_db = -66, .drive = 1.2,
     .text = "s1: high-pass 200 Hz, +6 dB at 1.5 kHz, -8 dB shelf above 8 kHz, noise -66 dBFS"},
    {.name = "s2", .gain_db = -1, .hp_hz = 120, .hp_q = 0.707, .lp_hz = 7000, .lp_q = 0.707,
     .eq = {PEAK(400, 1, 4), PEAK(5000, 1.5, -6)}, .noise_db = -75, .noise_pink = 1,
     .drive = 2.5, .asym = 0.2,
     .text = "s2: high-pass 120 Hz, low-pass 7 kHz, +4 dB at 400 Hz, -6 dB at 5 kHz, strong "
             "asymmetric saturation"},
    {.name = "s3", .gain_db = 2, .hp_hz = 300, .hp_q = 0.9,
     .eq = {PEAK(2500, 2, 5), LOWSHELF(600, -3)}, .noise_db = -68, .drive = 1,
     .text = "s3: high-pass 300 Hz, -3 dB shelf below 600 Hz, +5 dB at 2.5 kHz (Q 2), noise "
             "-68 dBFS"},
    {.name = "s4", .gain_db = -3, .hp_hz = 400, .hp_q = 1.0, .lp_hz = 5000, .lp_q = 0.9,
     .eq = {PEAK(1000, 1.5, 8)}, .noise_db = -62, .drive = 3, .asym = 0.3,
     .text = "s4: tinny: band 400 Hz - 5 kHz, +8 dB at 1 kHz, noise -62 dBFS, hard asymmetric "
             "saturation"},
    {.name = "s5", .gain_db = 4, .hp_hz = 80, .hp_q = 0.707, .lp_hz = 3500, .lp_q = 0.707,
     .eq = {LOWSHELF(300, 7), HIGHSHELF(2000, -6)}, .noise_db = -68, .noise_pink = 1,
     .drive = 1.5,
     .text = "s5: muffled: low-pass 3.5 kHz, -6 dB shelf above 2 kHz, +7 dB shelf below 300 Hz, "
             "pink noise -68 dBFS"},
    {.name = "s6", .hp_hz = 350, .hp_q = 0.9,
     .eq = {PEAK(3200, 2.5, 10), PEAK(900, 1, -6), PEAK(6500, 2, 6)}, .noise_db = -60,
     .drive = 2, .asym = -0.2,
     .text = "s6: resonant: high-pass 350 Hz, +10 dB at 3.2 kHz (Q 2.5), -6 dB at 900 Hz, +6 dB "
             "at 6.5 kHz, noise -60 dBFS, asymmetric saturation"},
};

const char *synth_device_name(int d)
{
    return d >= 0 && d < SYNTH_MAX_DEVICES ? devices[d].name : NULL;
}

const char *synth_device_describe(int d)
{
    return d >= 0 && d < SYNTH_MAX_DEVICES ? devices[d].text : NULL;
}

/* tanh's [3/3] Pade approximant, exact +-1 beyond |x| = 3. */
static inline float soft(float x)
{
    if (x > 3) return 1;
    if (x < -3) return -1;
    float x2 = x * x;
    return x * (27 + x2) / (27 + 9 * x2);
}

void synth_device_render(int d, const struct rng *r, double sr, const float *x, float *y,
                         float *tmp, long n)
{
    CHECK(d >= 0 && d < SYNTH_MAX_DEVICES);
    /* cppcheck does not see that CHECK does not return. */
    // cppcheck-suppress negativeIndex
    const struct device *dev = &devices[d];
    struct synth_biquad f;
    for (long i = 0; i < n; i++) y[i] = x[i];
    if (dev->hp_hz > 0) {
        synth_biquad_init(&f, SYNTH_HIGHPASS, dev->hp_hz, dev->hp_q, 0, sr);
        synth_biquad_run(&f, y, n);
    }
    if (dev->lp_hz > 0) {
        synth_biquad_init(&f, SYNTH_LOWPASS, dev->lp_hz, dev->lp_q, 0, sr);
        synth_biquad_run(&f, y, n);
    }
    for (int i = 0; i < 3; i++) {
        static const enum synth_biquad_kind kinds[] = {SYNTH_PEAK, SYNTH_PEAK, SYNTH_LOWSHELF,
                                                       SYNTH_HIGHSHELF};
        if (dev->eq[i].kind == EQ_NONE) continue;
        synth_biquad_init(&f, kinds[dev->eq[i].kind], dev->eq[i].hz, dev->eq[i].q, dev->eq[i].db,
                          sr);
        synth_biquad_run(&f, y, n);
    }
    float g = (float)synth_db(dev->gain_db);
    if (dev->drive > 0) {
        /* y = (soft(drive y + bias) - soft(bias)) / drive: unity gain for small signals
         * (to first order), compression and even harmonics for large ones; the DC the bias
         * leaves behind is removed by a 10 Hz high-pass. */
        float dr = (float)dev->drive, bias = (float)dev->asym, s0 = soft(bias);
        float slope = (soft(bias + 1e-3f) - soft(bias - 1e-3f)) / 2e-3f;
        for (long i = 0; i < n; i++) y[i] = (soft(dr * g * y[i] + bias) - s0) / (dr * slope);
        synth_biquad_init(&f, SYNTH_HIGHPASS, 10, 0.707, 0, sr);
        synth_biquad_run(&f, y, n);
    } else {
        synth_scale(y, n, g);
    }
    /* The noise floor. */
    struct rng nr = *r;
    synth_white(&nr, tmp, n, 1);
    if (dev->noise_pink) synth_colour(tmp, n, 1, sr);
    double rms = synth_rms(tmp, n);
    if (rms > 0) synth_mix(y, tmp, n, (float)(synth_db(dev->noise_db) / rms));
    /* Full scale: soft knee from 0.9, never beyond 1. */
    for (long i = 0; i < n; i++) {
        float v = y[i], m = v < 0 ? -v : v;
        if (m > 0.9f) {
            m = 0.9f + 0.1f * soft((m - 0.9f) * 10) ;
            y[i] = v < 0 ? -m : m;
        }
    }
}
