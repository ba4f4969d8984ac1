/* test_audio.c: audio_file round trips in every format, files made by sox, and every kind
 * of damaged file (made at test time by truncating / corrupting generated files).
 *
 * Signals are generated here (seeded), so nothing depends on fixtures. sox is used when it
 * is installed and the sox cases are skipped with a note otherwise.
 */
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>

#include "basin/audio/audio_file.h"
#include "basin/core/mem.h"
#include "basin/core/rng.h"
#include "basin/core/status.h"
#include "test.h"

static const int rates[] = {8000, 16000, 22050, 44100, 48000};
static const int channel_counts[] = {1, 2, 6};

/* ---- helpers ----------------------------------------------------------------------- */

/* (C, T): channel c is a sine at 220 (c + 1) Hz, amplitude 0.4, plus seeded noise. */
static int make_signal(struct audio_file *af, int n_channels, long n_frames, int rate,
                       float noise, uint64_t seed)
{
    if (audio_file_alloc(af, n_channels, n_frames, rate) != STATUS_OK) return 0;
    struct rng r;
    rng_seed(&r, seed);
    for (int c = 0; c < n_channels; c++) {
        float *x = audio_file_channel(af, c);
        /* the 6th of 6 channels is LFE to Vorbis and Opus: keep it low */
        double f = n_channels == 6 && c == 5 ? 55.0 : 220.0 * (c + 1);
        for (long t = 0; t < n_frames; t++)
            x[t] = (float)(0.4 * sin(2 * M_PI * f * t / rate) + noise * (rng_uniform(&r) - 0.5));
    }
    return 1;
}

static double max_abs_diff(const float *a, const float *b, long n)
{
    double m = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN propagates */
    }
    return m;
}

/* Normalised correlation of a and b over n samples. */
static double correlation(const float *a, const float *b, long n)
{
    double ab = 0, aa = 0, bb = 0;
    for (long i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

static int msg_names(const char *path)
{
    const char *d = status_detail();
    return strncmp(d, path, strlen(path)) == 0 && !strchr(d, '\n');
}

/* Expect audio_file_read(path) to fail with want, a one-line message starting with the path
 * and containing `word`. */
#define EXPECT_READ_FAILS(path, opts, want, word)                                           \
    do {                                                                                    \
        struct audio_file a_;                                                               \
        int s_ = audio_file_read(&a_, (path), (opts));                                      \
        EXPECT_MSG(s_ == (want), "%s: status %s, expected %s (%s)", (path),                 \
                   status_name((enum status)s_), status_name(want), status_detail());       \
        EXPECT_MSG(msg_names(path), "message does not start with %s: %s", (path),          \
                   status_detail());                                                        \
        EXPECT_MSG(strstr(status_detail(), (word)) != NULL, "'%s' not in: %s", (word),    \
                   status_detail());                                                        \
        EXPECT(a_.x == NULL && a_.n_frames == 0);                                           \
        audio_file_fini(&a_);                                                               \
    } while (0)

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int file_copy_prefix(const char *src, const char *dst, long n_bytes)
{
    FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
    int ok = in && out;
    char buf[8192];
    while (ok && n_bytes > 0) {
        size_t k = fread(buf, 1, n_bytes < (long)sizeof buf ? (size_t)n_bytes : sizeof buf, in);
        if (k == 0) break;
        ok = fwrite(buf, 1, k, out) == k;
        n_bytes -= (long)k;
    }
    if (in) fclose(in);
    if (out && fclose(out) != 0) ok = 0;
    return ok;
}

static int file_patch(const char *path, long offset, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "r+b");
    if (!f) return 0;
    int ok = fseek(f, offset, SEEK_SET) == 0 && fwrite(bytes, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

static int file_randomise(const char *path, long offset, long n, uint64_t seed)
{
    struct rng r;
    rng_seed(&r, seed);
    unsigned char *b = malloc((size_t)n);
    if (!b) return 0;
    for (long i = 0; i < n; i++) b[i] = (unsigned char)rng_u64(&r);
    int ok = file_patch(path, offset, b, (size_t)n);
    free(b);
    return ok;
}

static int file_write_bytes(const char *path, const void *bytes, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f) return 0;
    int ok = fwrite(bytes, 1, n, f) == n;
    return fclose(f) == 0 && ok;
}

/* Byte offset of a RIFF chunk's payload (after its 8-byte header), or -1. */
static long riff_chunk(const char *path, const char *id)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    long pos = 12, found = -1;
    unsigned char h[8];
    while (fseek(f, pos, SEEK_SET) == 0 && fread(h, 1, 8, f) == 8) {
        unsigned long size = h[4] | h[5] << 8 | h[6] << 16 | (unsigned long)h[7] << 24;
        if (!memcmp(h, id, 4)) {
            found = pos + 8;
            break;
        }
        pos += 8 + (long)size + (long)(size & 1);
    }
    fclose(f);
    return found;
}

static void put_le32(unsigned char *b, uint32_t v)
{
    for (int i = 0; i < 4; i++) b[i] = (unsigned char)(v >> (8 * i));
}

static int have_sox(void)
{
    static int cached = -1;
    if (cached < 0) cached = system("command -v sox >/dev/null 2>&1") == 0;
    return cached;
}

static int run(const char *cmd)
{
    return system(cmd) == 0;
}

/* Run a read with fd 2 sent to /dev/null: libmpg123 warns on stderr about damaged MP3s. */
static int read_quiet(struct audio_file *af, const char *path,
                      const struct audio_file_read_opts *opts)
{
    fflush(stderr);
    int saved = dup(2), devnull = open("/dev/null", O_WRONLY);
    if (saved >= 0 && devnull >= 0) dup2(devnull, 2);
    int s = audio_file_read(af, path, opts);
    fflush(stderr);
    if (saved >= 0) {
        dup2(saved, 2);
        close(saved);
    }
    if (devnull >= 0) close(devnull);
    return s;
}

/* Quantise a clip in place to the b-bit grid the writer uses. */
static void quantise_clip(struct audio_file *af, int bits)
{
    double scale = ldexp(1.0, bits - 1);
    long n = af->n_frames * af->n_channels;
    for (long i = 0; i < n; i++) {
        double v = af->x[i] * scale;
        if (v > scale - 1) v = scale - 1;
        if (v < -scale) v = -scale;
        af->x[i] = (float)(nearbyint(v) / scale);
    }
}

/* ---- round trips ------------------------------------------------------------------- */

static const struct {
    enum audio_file_format fmt;
    int bits; /* 0: float, stored exactly */
} lossless[] = {
    {AUDIO_FILE_WAV_U8, 8},    {AUDIO_FILE_WAV_16, 16},   {AUDIO_FILE_WAV_24, 24},
    {AUDIO_FILE_WAV_32, 32},   {AUDIO_FILE_WAV_F32, 0},   {AUDIO_FILE_WAV_F64, 0},
    {AUDIO_FILE_FLAC_16, 16},  {AUDIO_FILE_FLAC_24, 24},  {AUDIO_FILE_AIFF_16, 16},
};

/* Every lossless format x rate x channel count: the read-back is within half a step of
 * the written signal, and reading then rewriting is bit-exact. */
static void test_roundtrip_lossless(void)
{
    for (size_t k = 0; k < sizeof lossless / sizeof lossless[0]; k++)
        for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++)
            for (size_t ci = 0; ci < sizeof channel_counts / sizeof channel_counts[0]; ci++) {
                enum audio_file_format fmt = lossless[k].fmt;
                int rate = rates[ri], C = channel_counts[ci], bits = lossless[k].bits;
                long T = rate / 5 + 7;
                char name[64];
                snprintf(name, sizeof name, "ll-%s-%d-%d.%s", audio_file_format_name(fmt), rate,
                         C, audio_file_format_ext(fmt));
                const char *path = test_path(name);
                struct audio_file src, got, again;
                REQUIRE(make_signal(&src, C, T, rate, 0.1f, 1000 + k));
                REQUIRE_OK(audio_file_write(path, &src, fmt));
                REQUIRE_OK(audio_file_read(&got, path, NULL));
                EXPECT_EQ_INT(got.n_channels, C);
                EXPECT_EQ_INT(got.n_frames, T);
                EXPECT_EQ_INT(got.sample_rate_hz, rate);
                EXPECT_EQ_INT(got.partial, 0);
                if (got.n_channels == C && got.n_frames == T) {
                    double tol = bits ? ldexp(0.5, 1 - bits) * 1.0001 : 0;
                    if (bits == 32) tol = ldexp(1.0, -24); /* int32 -> float rounds */
                    double d = max_abs_diff(got.x, src.x, (long)C * T);
                    EXPECT_MSG(d <= tol, "%s: max |diff| %g > %g", name, d, tol);
                }
                /* second generation: bit-exact */
                REQUIRE_OK(audio_file_write(path, &got, fmt));
                REQUIRE_OK(audio_file_read(&again, path, NULL));
                if (again.n_frames == got.n_frames && again.n_channels == got.n_channels)
                    EXPECT_MSG(max_abs_diff(again.x, got.x, (long)C * T) == 0,
                               "%s: rewrite not bit-exact", name);
                else
                    EXPECT_MSG(0, "%s: rewrite changed the shape", name);
                unlink(path);
                audio_file_fini(&src);
                audio_file_fini(&got);
                audio_file_fini(&again);
            }
}

/* A quantised signal survives an integer format exactly (k / 2^(b-1) in, k / 2^(b-1) out),
 * and the extremes clip to the format's range. */
static void test_integer_scaling_exact(void)
{
    static const struct { enum audio_file_format fmt; int bits; } cases[] = {
        {AUDIO_FILE_WAV_U8, 8}, {AUDIO_FILE_WAV_16, 16}, {AUDIO_FILE_WAV_24, 24},
        {AUDIO_FILE_FLAC_16, 16}, {AUDIO_FILE_FLAC_24, 24}, {AUDIO_FILE_AIFF_16, 16},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct audio_file a, b;
        REQUIRE(make_signal(&a, 2, 3000, 16000, 0.5f, 7));
        quantise_clip(&a, cases[k].bits);
        a.x[0] = -1.0f;
        a.x[1] = 1.0f - (float)ldexp(1.0, 1 - cases[k].bits);
        a.x[2] = 0;
        const char *path = test_path("scale.bin");
        REQUIRE_OK(audio_file_write(path, &a, cases[k].fmt));
        REQUIRE_OK(audio_file_read(&b, path, NULL));
        REQUIRE(b.n_frames == a.n_frames && b.n_channels == 2);
        EXPECT_MSG(max_abs_diff(a.x, b.x, 6000) == 0, "%s not exact",
                   audio_file_format_name(cases[k].fmt));
        audio_file_fini(&b);
        /* out of range: clipped, not wrapped */
        a.x[0] = 3.0f;
        a.x[1] = -7.0f;
        REQUIRE_OK(audio_file_write(path, &a, cases[k].fmt));
        REQUIRE_OK(audio_file_read(&b, path, NULL));
        EXPECT_NEAR(b.x[0], 1.0 - ldexp(1.0, 1 - cases[k].bits), 0);
        EXPECT_NEAR(b.x[1], -1.0, 0);
        audio_file_fini(&a);
        audio_file_fini(&b);
    }
    /* 16-bit: the sample k reads as k / 32768, as soundfile / librosa */
    struct audio_file a, b;
    REQUIRE_OK(audio_file_alloc(&a, 1, 4, 8000));
    a.x[0] = 1.0f / 32768;
    a.x[1] = -12345.0f / 32768;
    a.x[2] = 32767.0f / 32768;
    a.x[3] = -1;
    const char *path = test_path("k.wav");
    REQUIRE_OK(audio_file_write(path, &a, AUDIO_FILE_WAV_16));
    FILE *f = fopen(path, "rb");
    REQUIRE(f);
    unsigned char raw[8];
    long data = riff_chunk(path, "data");
    REQUIRE(data > 0 && fseek(f, data, SEEK_SET) == 0 && fread(raw, 1, 8, f) == 8);
    fclose(f);
    EXPECT_EQ_INT((int16_t)(raw[0] | raw[1] << 8), 1);
    EXPECT_EQ_INT((int16_t)(raw[2] | raw[3] << 8), -12345);
    EXPECT_EQ_INT((int16_t)(raw[4] | raw[5] << 8), 32767);
    EXPECT_EQ_INT((int16_t)(raw[6] | raw[7] << 8), -32768);
    REQUIRE_OK(audio_file_read(&b, path, NULL));
    EXPECT_TENSOR_NEAR(b.x, a.x, 4, 0, 0);
    audio_file_fini(&a);
    audio_file_fini(&b);
}

/* Vorbis, Opus and MP3 at the rates / channel counts they store: same rate and channel
 * count, frame count within the codec's padding, each channel correlated with the input.
 * The combinations a codec cannot store fail with STATUS_UNSUPPORTED. */
static void test_roundtrip_lossy(void)
{
    static const enum audio_file_format lossy[] = {AUDIO_FILE_VORBIS, AUDIO_FILE_OPUS,
                                                   AUDIO_FILE_MP3};
    int n_written = 0;
    for (size_t k = 0; k < 3; k++)
        for (size_t ri = 0; ri < sizeof rates / sizeof rates[0]; ri++)
            for (size_t ci = 0; ci < sizeof channel_counts / sizeof channel_counts[0]; ci++) {
                enum audio_file_format fmt = lossy[k];
                int rate = rates[ri], C = channel_counts[ci];
                long T = rate / 2;
                /* libvorbisenc 1.3.7 leaks ~2.8 KB in vorbis_encode_setup_init for 6 channels
                 * at 44.1 / 48 kHz (like xiph/vorbis issue 91): fine in use, fatal under
                 * LeakSanitizer. 6-channel Vorbis is covered at the lower rates. */
                if (fmt == AUDIO_FILE_VORBIS && C == 6 && rate >= 44100) continue;
                char name[64];
                snprintf(name, sizeof name, "lossy-%d-%d.%s", rate, C, audio_file_format_ext(fmt));
                const char *path = test_path(name);
                struct audio_file src, got;
                REQUIRE(make_signal(&src, C, T, rate, 0.02f, 2000 + k));
                int supported = audio_file_format_supported(fmt, rate, C);
                int s = audio_file_write(path, &src, fmt);
                if (!supported) {
                    EXPECT_MSG(s == STATUS_UNSUPPORTED, "%s: %s", name, status_detail());
                    EXPECT(msg_names(path));
                    EXPECT(access(path, F_OK) != 0);
                    audio_file_fini(&src);
                    continue;
                }
                n_written++;
                if (s != STATUS_OK) {
                    EXPECT_MSG(0, "%s: %s", name, status_detail());
                    audio_file_fini(&src);
                    continue;
                }
                s = audio_file_read(&got, path, NULL);
                EXPECT_MSG(s == STATUS_OK, "%s: %s", name, status_detail());
                if (s == STATUS_OK) {
                    EXPECT_EQ_INT(got.n_channels, C);
                    EXPECT_EQ_INT(got.sample_rate_hz, rate);
                    EXPECT_MSG(labs(got.n_frames - T) <= 64, "%s: %ld frames, wrote %ld", name,
                               got.n_frames, T);
                    long n = got.n_frames < T ? got.n_frames : T;
                    for (int c = 0; c < C && c < got.n_channels; c++) {
                        double r = correlation(audio_file_channel(&got, c) + n / 10,
                                               audio_file_channel(&src, c) + n / 10, n - n / 5);
                        EXPECT_MSG(r > 0.9, "%s channel %d: correlation %.3f", name, c, r);
                    }
                }
                unlink(path);
                audio_file_fini(&src);
                audio_file_fini(&got);
            }
    EXPECT(n_written >= 25);
    /* the combinations known not to work, whatever the build */
    EXPECT(!audio_file_format_supported(AUDIO_FILE_OPUS, 44100, 1));
    EXPECT(!audio_file_format_supported(AUDIO_FILE_MP3, 48000, 6));
}

/* Mix-down is the mean of the channels (librosa.to_mono); mono=1 reads the same thing. */
static void test_mono_mixdown(void)
{
    struct audio_file a, b, m;
    REQUIRE_OK(audio_file_alloc(&a, 3, 4, 16000));
    const float v[3][4] = {{0.5f, -1, 0.25f, 0}, {0.5f, 1, 0.25f, 0.75f}, {-0.25f, 0, 1, 0.75f}};
    for (int c = 0; c < 3; c++) memcpy(audio_file_channel(&a, c), v[c], sizeof v[c]);
    const char *path = test_path("mix.wav");
    REQUIRE_OK(audio_file_write(path, &a, AUDIO_FILE_WAV_F32));
    struct audio_file_read_opts o = {.mono = 1};
    REQUIRE_OK(audio_file_read(&m, path, &o));
    REQUIRE_OK(audio_file_to_mono(&a));
    EXPECT_EQ_INT(a.n_channels, 1);
    EXPECT_EQ_INT(m.n_channels, 1);
    const float want[4] = {0.75f / 3, 0, 1.5f / 3, 0.5f};
    EXPECT_TENSOR_NEAR(a.x, want, 4, 0, 0);
    EXPECT_TENSOR_NEAR(m.x, want, 4, 0, 0);
    REQUIRE_OK(audio_file_to_mono(&a)); /* mono stays mono */
    EXPECT_TENSOR_NEAR(a.x, want, 4, 0, 0);
    audio_file_fini(&a);
    audio_file_fini(&m);
    /* larger, stereo FLAC: mono read == to_mono of the full read */
    REQUIRE(make_signal(&a, 2, 5000, 22050, 0.2f, 9));
    path = test_path("mix.flac");
    REQUIRE_OK(audio_file_write(path, &a, AUDIO_FILE_FLAC_16));
    REQUIRE_OK(audio_file_read(&b, path, NULL));
    REQUIRE_OK(audio_file_read(&m, path, &o));
    REQUIRE_OK(audio_file_to_mono(&b));
    REQUIRE(b.n_frames == 5000 && m.n_frames == 5000);
    EXPECT_TENSOR_NEAR(m.x, b.x, 5000, 0, 0);
    audio_file_fini(&a);
    audio_file_fini(&b);
    audio_file_fini(&m);
    audio_file_fini(&a); /* fini twice and fini(NULL) are no-ops */
    audio_file_fini(NULL);
}

/* offset / duration pick frames [int(offset * sr), + int(duration * sr)), clipped at the end. */
static void test_time_range(void)
{
    static const enum audio_file_format fmts[] = {AUDIO_FILE_WAV_16, AUDIO_FILE_FLAC_24,
                                                  AUDIO_FILE_WAV_F32, AUDIO_FILE_VORBIS,
                                                  AUDIO_FILE_MP3};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        struct audio_file src, full, part;
        REQUIRE(make_signal(&src, 2, 16000, 16000, 0.01f, 11));
        char name[32];
        snprintf(name, sizeof name, "range.%s", audio_file_format_ext(fmts[k]));
        const char *path = test_path(name);
        REQUIRE_OK(audio_file_write(path, &src, fmts[k]));
        REQUIRE_OK(audio_file_read(&full, path, NULL));
        struct audio_file_read_opts o = {.offset_s = 0.25, .duration_s = 0.5};
        REQUIRE_OK(audio_file_read(&part, path, &o));
        EXPECT_EQ_INT(part.n_frames, 8000);
        EXPECT_EQ_INT(part.n_channels, 2);
        if (part.n_frames == 8000 && full.n_frames >= 12000) {
            for (int c = 0; c < 2; c++) {
                const float *p = audio_file_channel(&part, c);
                const float *q = audio_file_channel(&full, c) + 4000;
                if (audio_file_format_lossy(fmts[k])) {
                    double r = correlation(p + 1000, q + 1000, 6000);
                    EXPECT_MSG(r > 0.99, "%s: range vs full correlation %.4f", name, r);
                } else {
                    EXPECT_MSG(max_abs_diff(p, q, 8000) == 0, "%s: range differs", name);
                }
            }
        }
        audio_file_fini(&part);
        /* a duration past the end is clipped to the end */
        o = (struct audio_file_read_opts){.offset_s = 0.75, .duration_s = 10};
        REQUIRE_OK(audio_file_read(&part, path, &o));
        EXPECT_EQ_INT(part.n_frames, full.n_frames - 12000);
        audio_file_fini(&part);
        /* offset past the end, negative offset, a duration under one frame */
        o = (struct audio_file_read_opts){.offset_s = 1.5};
        EXPECT_READ_FAILS(path, &o, STATUS_INVALID, "past the end");
        o = (struct audio_file_read_opts){.offset_s = -1};
        EXPECT_READ_FAILS(path, &o, STATUS_INVALID, "offset");
        o = (struct audio_file_read_opts){.duration_s = 1e-6};
        EXPECT_READ_FAILS(path, &o, STATUS_INVALID, "one frame");
        /* offset with mono */
        o = (struct audio_file_read_opts){.offset_s = 0.5, .duration_s = 0.125, .mono = 1};
        REQUIRE_OK(audio_file_read(&part, path, &o));
        EXPECT_EQ_INT(part.n_frames, 2000);
        EXPECT_EQ_INT(part.n_channels, 1);
        audio_file_fini(&part);
        audio_file_fini(&src);
        audio_file_fini(&full);
    }
    /* librosa's int(t * sr): 0.29 s at 8 kHz is frame 2319 (0.29 * 8000 = 2319.9999...) */
    struct audio_file a, b;
    REQUIRE_OK(audio_file_alloc(&a, 1, 8000, 8000));
    for (long t = 0; t < 8000; t++) a.x[t] = (float)t / 32768;
    const char *path = test_path("ramp.wav");
    REQUIRE_OK(audio_file_write(path, &a, AUDIO_FILE_WAV_16));
    struct audio_file_read_opts o = {.offset_s = 0.29, .duration_s = 0.01};
    REQUIRE_OK(audio_file_read(&b, path, &o));
    EXPECT_EQ_INT(b.n_frames, (long)(0.01 * 8000));
    EXPECT_NEAR(b.x[0] * 32768, (double)(long)(0.29 * 8000), 0);
    audio_file_fini(&a);
    audio_file_fini(&b);
}

/* Offsets and durations too large for a frame count (1e15 s at 16 kHz is 1.6e19 frames,
 * past LONG_MAX): an offset that far is past the end, a duration that long reads to the end,
 * for a WAV (known length, seekable) and an Ogg (decoded to skip). */
static void test_time_range_huge(void)
{
    static const enum audio_file_format fmts[] = {AUDIO_FILE_WAV_16, AUDIO_FILE_VORBIS};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        struct audio_file src, full, part;
        REQUIRE(make_signal(&src, 1, 4000, 16000, 0.01f, 5));
        char name[32];
        snprintf(name, sizeof name, "huge.%s", audio_file_format_ext(fmts[k]));
        const char *path = test_path(name);
        REQUIRE_OK(audio_file_write(path, &src, fmts[k]));
        REQUIRE_OK(audio_file_read(&full, path, NULL));
        struct audio_file_read_opts o = {.offset_s = 1e15};
        EXPECT_READ_FAILS(path, &o, STATUS_INVALID, "past the end");
        o = (struct audio_file_read_opts){.offset_s = 1e300};
        EXPECT_READ_FAILS(path, &o, STATUS_INVALID, "past the end");
        o = (struct audio_file_read_opts){.duration_s = 1e300};
        REQUIRE_OK(audio_file_read(&part, path, &o));
        EXPECT_EQ_INT(part.n_frames, full.n_frames);
        audio_file_fini(&part);
        o = (struct audio_file_read_opts){.offset_s = 0.125, .duration_s = 1e15};
        REQUIRE_OK(audio_file_read(&part, path, &o));
        EXPECT_EQ_INT(part.n_frames, full.n_frames - 2000);
        audio_file_fini(&part);
        audio_file_fini(&full);
        audio_file_fini(&src);
    }
}

static void test_probe_and_formats(void)
{
    struct audio_file a;
    REQUIRE(make_signal(&a, 2, 1234, 22050, 0.1f, 5));
    const char *path = test_path("probe.flac");
    REQUIRE_OK(audio_file_write(path, &a, AUDIO_FILE_FLAC_24));
    struct audio_file_info info;
    REQUIRE_OK(audio_file_probe(path, &info));
    EXPECT_EQ_INT(info.n_channels, 2);
    EXPECT_EQ_INT(info.sample_rate_hz, 22050);
    EXPECT_EQ_INT(info.n_frames, 1234);
    EXPECT_MSG(strstr(info.format, "FLAC") && strstr(info.format, "24"), "format '%s'",
               info.format);
    EXPECT_EQ_INT(audio_file_probe(test_path("nope.wav"), &info), STATUS_NOT_FOUND);
    audio_file_fini(&a);

    enum audio_file_format f;
    for (int i = 0; i < AUDIO_FILE_FORMAT_COUNT; i++) {
        REQUIRE_OK(audio_file_format_parse(audio_file_format_name((enum audio_file_format)i), &f));
        EXPECT_EQ_INT(f, i);
    }
    EXPECT_EQ_INT(audio_file_format_parse("wav17", &f), STATUS_INVALID);
    EXPECT(strstr(status_detail(), "wav17") && strstr(status_detail(), "flac24"));
    EXPECT_STR(audio_file_format_name((enum audio_file_format)99), "?");
    EXPECT_STR(audio_file_format_ext(AUDIO_FILE_OPUS), "opus");
    EXPECT(audio_file_format_lossy(AUDIO_FILE_MP3) && !audio_file_format_lossy(AUDIO_FILE_FLAC_16));
    EXPECT(audio_file_format_supported(AUDIO_FILE_WAV_16, 44100, 6));
    EXPECT(!audio_file_format_supported(AUDIO_FILE_WAV_16, 44100, 0));
}

/* ---- files made by sox ------------------------------------------------------------- */

/* sox converts our float WAV (dither off) to formats libsndfile's writer is not asked to
 * make: 24-bit and 8-bit unsigned WAV, WAVE_FORMAT_EXTENSIBLE (sox's choice for > 2
 * channels), AIFF, and a WAV written to a pipe (data size 0x7ffff000: not truncation). */
static void test_sox_files(void)
{
    if (!have_sox()) {
        printf("  note: sox not installed, sox cases skipped\n");
        return;
    }
    static const struct {
        const char *name, *args, *format_has;
        int C, lsb_bits;
    } cases[] = {
        {"s24.wav", "-b 24", "Signed 24 bit", 2, 24},
        {"u8.wav", "-b 8 -e unsigned-integer", "Unsigned 8 bit", 1, 8},
        {"x6.wav", "-b 16", "WAVEX", 6, 16},
        {"x6f.wav", "-e floating-point -b 32", "float", 6, 0},
        {"a.aiff", "-b 16", "AIFF", 2, 16},
        {"s32.wav", "-b 32 -e signed-integer", "Signed 32 bit", 2, 31},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        struct audio_file src, got;
        REQUIRE(make_signal(&src, cases[k].C, 11025, 22050, 0.1f, 300 + k));
        const char *in = test_path("sox-in.wav"), *out = test_path(cases[k].name);
        REQUIRE_OK(audio_file_write(in, &src, AUDIO_FILE_WAV_F32));
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "sox -D '%s' %s '%s' 2>/dev/null", in, cases[k].args, out);
        REQUIRE(run(cmd));
        struct audio_file_info info;
        REQUIRE_OK(audio_file_probe(out, &info));
        EXPECT_MSG(strstr(info.format, cases[k].format_has), "%s: format '%s'", cases[k].name,
                   info.format);
        REQUIRE_OK(audio_file_read(&got, out, NULL));
        EXPECT_EQ_INT(got.n_channels, cases[k].C);
        EXPECT_EQ_INT(got.n_frames, 11025);
        EXPECT_EQ_INT(got.sample_rate_hz, 22050);
        if (got.n_frames == 11025 && got.n_channels == cases[k].C) {
            /* sox works in 32-bit integers internally, so float and 32-bit outputs are
             * within 2^-23 of the input, not bit-exact */
            double tol = ldexp(1.0, 1 - cases[k].lsb_bits);
            if (cases[k].lsb_bits == 0 || cases[k].lsb_bits == 31) tol = ldexp(1.0, -23);
            double d = max_abs_diff(got.x, src.x, 11025L * cases[k].C);
            EXPECT_MSG(d <= tol, "%s: max |diff| %g > %g", cases[k].name, d, tol);
        }
        audio_file_fini(&src);
        audio_file_fini(&got);
    }
    /* a WAV written to a pipe has a placeholder data size: read fully, not "truncated" */
    const char *pipe_wav = test_path("pipe.wav");
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sox -D -n -r 16000 -c 1 -b 16 -t wav - synth 0.5 sine 440 2>/dev/null | cat > '%s'",
             pipe_wav);
    REQUIRE(run(cmd));
    struct audio_file got;
    REQUIRE_OK(audio_file_read(&got, pipe_wav, NULL));
    EXPECT_EQ_INT(got.n_frames, 8000);
    audio_file_fini(&got);
    /* sox's own FLAC and Vorbis */
    snprintf(cmd, sizeof cmd, "sox -D -n -r 44100 -c 2 '%s' synth 0.25 sine 440 2>/dev/null",
             test_path("sox.flac"));
    REQUIRE(run(cmd));
    REQUIRE_OK(audio_file_read(&got, test_path("sox.flac"), NULL));
    EXPECT_EQ_INT(got.n_frames, 11025);
    EXPECT_EQ_INT(got.n_channels, 2);
    audio_file_fini(&got);
    snprintf(cmd, sizeof cmd, "sox -D -n -r 44100 -c 1 '%s' synth 0.25 sine 440 2>/dev/null",
             test_path("sox.ogg"));
    REQUIRE(run(cmd));
    REQUIRE_OK(audio_file_read(&got, test_path("sox.ogg"), NULL));
    EXPECT_MSG(labs(got.n_frames - 11025) <= 64, "sox.ogg: %ld frames", got.n_frames);
    audio_file_fini(&got);
}

/* ---- damaged files ----------------------------------------------------------------- */

/* Write a 1 s, 16 kHz clip in fmt to name; returns the path or NULL. */
static const char *make_file(const char *name, enum audio_file_format fmt, int C, long T)
{
    struct audio_file a;
    if (!make_signal(&a, C, T, 16000, 0.05f, 77)) return NULL;
    const char *path = test_path(name);
    int s = audio_file_write(path, &a, fmt);
    audio_file_fini(&a);
    return s == STATUS_OK ? path : NULL;
}

static void test_bad_paths(void)
{
    const char *p = test_path("missing.wav");
    EXPECT_READ_FAILS(p, NULL, STATUS_NOT_FOUND, "no such file");
    p = test_path("a-dir.wav");
    REQUIRE(mkdir(p, 0755) == 0);
    EXPECT_READ_FAILS(p, NULL, STATUS_IO, "directory");
    p = test_path("empty.wav");
    REQUIRE(file_write_bytes(p, "", 0));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "empty file (0 bytes)");
    p = test_path("notes.txt");
    const char text[] = "this is not audio, just a few words of text\n";
    REQUIRE(file_write_bytes(p, text, sizeof text - 1));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "unrecognised format");
    p = test_path("random.wav");
    REQUIRE(file_write_bytes(p, "x", 1) && file_randomise(p, 0, 8192, 1));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "unrecognised format");
    /* a path under a regular file */
    char sub[600];
    snprintf(sub, sizeof sub, "%s/x.wav", test_path("notes.txt"));
    EXPECT_READ_FAILS(sub, NULL, STATUS_IO, "cannot open");
    /* unreadable (root reads anything, so only checked as another user) */
    if (geteuid() != 0) {
        p = make_file("locked.wav", AUDIO_FILE_WAV_16, 1, 100);
        REQUIRE(p && chmod(p, 0) == 0);
        EXPECT_READ_FAILS(p, NULL, STATUS_IO, "Permission denied");
    }
}

static void test_header_only(void)
{
    /* a valid header with a 0-byte data chunk, in each container that writes one */
    static const enum audio_file_format fmts[] = {AUDIO_FILE_WAV_16, AUDIO_FILE_WAV_F32,
                                                  AUDIO_FILE_AIFF_16, AUDIO_FILE_VORBIS,
                                                  AUDIO_FILE_OPUS, AUDIO_FILE_FLAC_16,
                                                  AUDIO_FILE_MP3};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "hdr%zu.%s", k, audio_file_format_ext(fmts[k]));
        const char *p = make_file(name, fmts[k], 1, 0);
        REQUIRE(p);
        /* FLAC and MP3 writers produce nothing for no audio; the rest a bare header */
        const char *word = file_size(p) == 0                ? "empty file"
                           : fmts[k] == AUDIO_FILE_OPUS ? "malformed"
                                                        : "no audio data";
        EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, word);
    }
    /* RIFF + fmt, no data chunk */
    const char *full = make_file("nodata-src.wav", AUDIO_FILE_WAV_16, 1, 1000);
    REQUIRE(full);
    const char *p = test_path("nodata.wav");
    REQUIRE(file_copy_prefix(full, p, 36));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "no audio data");
    /* only 20 bytes of header */
    REQUIRE(file_copy_prefix(full, p, 20));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, p);
    /* RIFF/WAVE then random bytes */
    REQUIRE(file_copy_prefix(full, p, 12) && file_randomise(p, 12, 4000, 3));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, p);
}

/* A WAV cut mid-data: an error naming the frames promised and present by default; with
 * allow_partial the leading audio, bit-exact, with partial set. */
static void test_truncated_wav(void)
{
    struct audio_file src, got;
    REQUIRE(make_signal(&src, 2, 16000, 16000, 0.05f, 77));
    const char *full = test_path("full.wav"), *cut = test_path("cut.wav");
    REQUIRE_OK(audio_file_write(full, &src, AUDIO_FILE_WAV_16));
    REQUIRE_OK(audio_file_read(&got, full, NULL));
    long data = riff_chunk(full, "data");
    REQUIRE(data > 0);
    REQUIRE(file_copy_prefix(full, cut, data + 4 * 6001 + 2)); /* 6001 frames and a half */
    EXPECT_READ_FAILS(cut, NULL, STATUS_FORMAT,
                      "truncated: header promises 16000 frames, 6001 in the file");
    struct audio_file_read_opts o = {.allow_partial = 1};
    struct audio_file part;
    REQUIRE_OK(audio_file_read(&part, cut, &o));
    EXPECT_EQ_INT(part.partial, 1);
    EXPECT_EQ_INT(part.n_frames, 6001);
    for (int c = 0; c < 2 && part.n_frames == 6001; c++)
        EXPECT_TENSOR_NEAR(audio_file_channel(&part, c), audio_file_channel(&got, c), 6001, 0, 0);
    audio_file_fini(&part);
    /* the header alone reveals it: a range inside the good part is refused too */
    o = (struct audio_file_read_opts){.duration_s = 0.1};
    EXPECT_READ_FAILS(cut, &o, STATUS_FORMAT, "truncated");
    /* the same for a float WAV and a 24-bit AIFF-less 6-channel WAV */
    REQUIRE_OK(audio_file_write(full, &src, AUDIO_FILE_WAV_F32));
    REQUIRE(file_copy_prefix(full, cut, file_size(full) / 3));
    EXPECT_READ_FAILS(cut, NULL, STATUS_FORMAT, "truncated: header promises 16000 frames");
    audio_file_fini(&src);
    audio_file_fini(&got);
    const char *aiff = make_file("full.aiff", AUDIO_FILE_AIFF_16, 1, 16000);
    REQUIRE(aiff);
    cut = test_path("cut.aiff");
    REQUIRE(file_copy_prefix(aiff, cut, file_size(aiff) / 2));
    EXPECT_READ_FAILS(cut, NULL, STATUS_FORMAT, "truncated: header promises 16000 frames");
}

/* Compressed formats cut short: every one an error, whatever libsndfile makes of it
 * (Ogg: an absurd frame count and no audio, or audio without an end-of-stream page; Opus:
 * may refuse to open; FLAC: lost sync; MP3: fewer frames than the Xing header says). */
static void test_truncated_compressed(void)
{
    static const enum audio_file_format fmts[] = {AUDIO_FILE_FLAC_16, AUDIO_FILE_FLAC_24,
                                                  AUDIO_FILE_VORBIS, AUDIO_FILE_OPUS,
                                                  AUDIO_FILE_MP3};
    static const double cuts[] = {0.1, 0.5, 0.9};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "long.%s", audio_file_format_ext(fmts[k]));
        const char *full = make_file(name, fmts[k], 2, 160000);
        REQUIRE(full);
        struct audio_file whole;
        REQUIRE_OK(audio_file_read(&whole, full, NULL));
        for (size_t j = 0; j < sizeof cuts / sizeof cuts[0]; j++) {
            snprintf(name, sizeof name, "cut%zu.%s", j, audio_file_format_ext(fmts[k]));
            const char *cut = test_path(name);
            REQUIRE(file_copy_prefix(full, cut, (long)(file_size(full) * cuts[j])));
            struct audio_file a;
            int s = read_quiet(&a, cut, NULL);
            EXPECT_MSG(s == STATUS_FORMAT, "%s cut at %.0f%%: %s (%s)", name, cuts[j] * 100,
                       status_name((enum status)s), status_detail());
            EXPECT_MSG(msg_names(cut), "%s", status_detail());
            EXPECT(a.x == NULL);
            /* allow_partial: whatever comes back is the start of the real audio */
            struct audio_file_read_opts o = {.allow_partial = 1};
            s = read_quiet(&a, cut, &o);
            if (s == STATUS_OK) {
                EXPECT_EQ_INT(a.partial, 1);
                EXPECT(a.n_frames < whole.n_frames);
                if (!audio_file_format_lossy(fmts[k]) && a.n_frames <= whole.n_frames)
                    EXPECT_TENSOR_NEAR(a.x, whole.x, a.n_frames, 0, 0);
            } else {
                EXPECT_EQ_INT(s, STATUS_FORMAT);
            }
            audio_file_fini(&a);
        }
        audio_file_fini(&whole);
    }
}

/* Random bytes inside the data: FLAC loses sync, Ogg reports a hole, a float WAV decodes
 * NaN / Inf. */
static void test_corrupt_data(void)
{
    static const enum audio_file_format fmts[] = {AUDIO_FILE_FLAC_16, AUDIO_FILE_VORBIS,
                                                  AUDIO_FILE_OPUS};
    for (size_t k = 0; k < sizeof fmts / sizeof fmts[0]; k++) {
        char name[32];
        snprintf(name, sizeof name, "corrupt.%s", audio_file_format_ext(fmts[k]));
        const char *p = make_file(name, fmts[k], 1, 160000);
        REQUIRE(p);
        long n = file_size(p);
        REQUIRE(file_randomise(p, n / 2, 2000, 5 + k));
        EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "corrupt");
    }
    const char *p = make_file("noise.wav", AUDIO_FILE_WAV_F32, 1, 16000);
    REQUIRE(p);
    long data = riff_chunk(p, "data");
    REQUIRE(data > 0 && file_randomise(p, data, 64000, 8));
    EXPECT_READ_FAILS(p, NULL, STATUS_NUMERIC, "is ");
}

static void test_nan_inf_samples(void)
{
    struct audio_file a;
    REQUIRE(make_signal(&a, 2, 2000, 16000, 0.0f, 1));
    const char *p = test_path("nan.wav");
    REQUIRE_OK(audio_file_write(p, &a, AUDIO_FILE_WAV_F32));
    long data = riff_chunk(p, "data");
    REQUIRE(data > 0);
    unsigned char nan_bits[4], inf_bits[4];
    put_le32(nan_bits, 0x7fc00000u);
    put_le32(inf_bits, 0xff800000u);
    REQUIRE(file_patch(p, data + 4 * (2 * 1234 + 1), nan_bits, 4)); /* frame 1234, channel 1 */
    EXPECT_READ_FAILS(p, NULL, STATUS_NUMERIC, "sample 1234 of channel 1 (0.0771 s) is NaN");
    struct audio_file_read_opts o = {.allow_partial = 1};
    EXPECT_READ_FAILS(p, &o, STATUS_NUMERIC, "NaN"); /* never accepted */
    o = (struct audio_file_read_opts){.duration_s = 0.05}; /* the range before it is fine */
    struct audio_file b;
    REQUIRE_OK(audio_file_read(&b, p, &o));
    audio_file_fini(&b);
    REQUIRE_OK(audio_file_write(p, &a, AUDIO_FILE_WAV_F64));
    data = riff_chunk(p, "data");
    unsigned char inf64[8] = {0, 0, 0, 0, 0, 0, 0xf0, 0x7f};
    REQUIRE(data > 0 && file_patch(p, data + 8 * 10, inf64, 8));
    EXPECT_READ_FAILS(p, NULL, STATUS_NUMERIC, "sample 5 of channel 0 (0.0003 s) is Inf");
    REQUIRE_OK(audio_file_write(p, &a, AUDIO_FILE_WAV_F32));
    REQUIRE(file_patch(p, data + 4 * 3, inf_bits, 4));
    EXPECT_READ_FAILS(p, NULL, STATUS_NUMERIC, "Inf");
    audio_file_fini(&a);
}

/* fmt chunk fields patched: 0 channels, absurd rates, an unimplemented encoding. */
static void test_bad_header_fields(void)
{
    const char *src = make_file("hdr-src.wav", AUDIO_FILE_WAV_16, 1, 4000);
    REQUIRE(src);
    long fmt = riff_chunk(src, "fmt ");
    REQUIRE(fmt > 0);
    const char *p = test_path("hdr.wav");
    unsigned char b[4];
    /* channels = 0 */
    REQUIRE(file_copy_prefix(src, p, file_size(src)));
    b[0] = b[1] = 0;
    REQUIRE(file_patch(p, fmt + 2, b, 2));
    EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "channel");
    /* sample rates 0, 100 Hz, 4 GHz */
    static const uint32_t bad_rates[] = {0, 100, 4000000000u};
    for (int i = 0; i < 3; i++) {
        REQUIRE(file_copy_prefix(src, p, file_size(src)));
        put_le32(b, bad_rates[i]);
        REQUIRE(file_patch(p, fmt + 4, b, 4));
        EXPECT_READ_FAILS(p, NULL, STATUS_FORMAT, "rate");
    }
    /* format tags 0x0055 (MP3 in WAV), 0x0160 (WMA): a WAV, in an encoding not decoded */
    static const int tags[] = {0x55, 0x160};
    for (int i = 0; i < 2; i++) {
        REQUIRE(file_copy_prefix(src, p, file_size(src)));
        b[0] = (unsigned char)tags[i];
        b[1] = (unsigned char)(tags[i] >> 8);
        REQUIRE(file_patch(p, fmt, b, 2));
        EXPECT_READ_FAILS(p, NULL, STATUS_UNSUPPORTED, "unsupported WAV encoding");
    }
    /* WAVE_FORMAT_EXTENSIBLE with an unknown sub-format GUID (sox writes WAVEX for 6 ch) */
    if (!have_sox()) return;
    const char *x = test_path("guid.wav");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sox -D -n -r 16000 -c 6 -b 16 '%s' synth 0.1 sine 440 2>/dev/null",
             x);
    REQUIRE(run(cmd));
    long xf = riff_chunk(x, "fmt ");
    REQUIRE(xf > 0);
    b[0] = 0x55;
    b[1] = 0;
    REQUIRE(file_patch(x, xf + 24, b, 2)); /* first bytes of the sub-format GUID */
    EXPECT_READ_FAILS(x, NULL, STATUS_UNSUPPORTED, "unsupported");
}

/* A header promising far more frames than the file holds allocates nothing of the kind:
 * decoding stops at the data, reports truncation, and a small max_samples is never hit. */
static void test_absurd_frame_count(void)
{
    /* WAV data size 1 GiB */
    const char *src = make_file("big-src.wav", AUDIO_FILE_WAV_16, 1, 4000);
    REQUIRE(src);
    long data = riff_chunk(src, "data");
    REQUIRE(data > 0);
    const char *p = test_path("big.wav");
    REQUIRE(file_copy_prefix(src, p, file_size(src)));
    unsigned char b[8];
    put_le32(b, 0x40000000u);
    REQUIRE(file_patch(p, data - 4, b, 4));
    struct audio_file_read_opts o = {.max_samples = 100000};
    EXPECT_READ_FAILS(p, &o, STATUS_FORMAT, "header promises 536870912 frames, 4000 in the file");
    /* FLAC STREAMINFO total samples (36 bits at byte 8 + 13.5 of the block) = 2^35 */
    const char *fsrc = make_file("big-src.flac", AUDIO_FILE_FLAC_16, 1, 4000);
    REQUIRE(fsrc);
    p = test_path("big.flac");
    REQUIRE(file_copy_prefix(fsrc, p, file_size(fsrc)));
    FILE *f = fopen(p, "r+b");
    REQUIRE(f);
    unsigned char si[34];
    REQUIRE(fseek(f, 8, SEEK_SET) == 0 && fread(si, 1, 34, f) == 34);
    uint64_t total = 1ull << 35;
    si[13] = (unsigned char)((si[13] & 0xf0) | ((total >> 32) & 0x0f));
    si[14] = (unsigned char)(total >> 24);
    si[15] = (unsigned char)(total >> 16);
    si[16] = (unsigned char)(total >> 8);
    si[17] = (unsigned char)total;
    REQUIRE(fseek(f, 8, SEEK_SET) == 0 && fwrite(si, 1, 34, f) == 34);
    fclose(f);
    struct audio_file_info info;
    REQUIRE_OK(audio_file_probe(p, &info));
    EXPECT_EQ_INT(info.n_frames, 1L << 35);
    EXPECT_READ_FAILS(p, &o, STATUS_FORMAT, "header promises 34359738368 frames, 4000 decoded");
    /* and the cap itself: a real file over max_samples, and one exactly at it */
    o.max_samples = 1000;
    EXPECT_READ_FAILS(src, &o, STATUS_NOMEM, "max_samples");
    o.max_samples = 3999;
    EXPECT_READ_FAILS(src, &o, STATUS_NOMEM, "max_samples");
    o.max_samples = 4000;
    struct audio_file a;
    REQUIRE_OK(audio_file_read(&a, src, &o));
    EXPECT_EQ_INT(a.n_frames, 4000);
    audio_file_fini(&a);
}

/* ---- writing ----------------------------------------------------------------------- */

static int count_tmp_files(void)
{
    DIR *d = opendir(test_dir());
    int n = 0;
    if (!d) return -1;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp-")) n++;
    closedir(d);
    return n;
}

static void test_write_atomic_and_errors(void)
{
    struct audio_file a, b, got;
    REQUIRE(make_signal(&a, 2, 8000, 16000, 0.1f, 21));
    REQUIRE(make_signal(&b, 1, 3000, 8000, 0.1f, 22));
    const char *p = test_path("keep.wav");
    REQUIRE_OK(audio_file_write(p, &a, AUDIO_FILE_WAV_16));
    /* a failed write (NaN) leaves the old file whole and no temporary behind */
    b.x[1500] = NAN;
    EXPECT_EQ_INT(audio_file_write(p, &b, AUDIO_FILE_WAV_16), STATUS_NUMERIC);
    EXPECT(msg_names(p) && strstr(status_detail(), "sample 1500 of channel 0 is NaN"));
    b.x[1500] = INFINITY;
    EXPECT_EQ_INT(audio_file_write(p, &b, AUDIO_FILE_WAV_F32), STATUS_NUMERIC);
    b.x[1500] = 0;
    /* codec limits */
    EXPECT_EQ_INT(audio_file_write(test_path("x.opus"), &a, AUDIO_FILE_OPUS), STATUS_OK);
    a.sample_rate_hz = 44100;
    EXPECT_EQ_INT(audio_file_write(test_path("y.opus"), &a, AUDIO_FILE_OPUS), STATUS_UNSUPPORTED);
    EXPECT(strstr(status_detail(), "48000"));
    a.sample_rate_hz = 100;
    EXPECT_EQ_INT(audio_file_write(test_path("y.wav"), &a, AUDIO_FILE_WAV_16), STATUS_INVALID);
    a.sample_rate_hz = 16000;
    /* a missing directory */
    EXPECT_EQ_INT(audio_file_write(test_path("no/such/dir.wav"), &a, AUDIO_FILE_WAV_16),
                  STATUS_IO);
    /* the target is a directory: the rename fails, the temporary is removed */
    const char *dir = test_path("target-dir");
    REQUIRE(mkdir(dir, 0755) == 0);
    EXPECT_EQ_INT(audio_file_write(dir, &a, AUDIO_FILE_WAV_16), STATUS_IO);
    EXPECT_EQ_INT(count_tmp_files(), 0);
    REQUIRE_OK(audio_file_read(&got, p, NULL));
    EXPECT_EQ_INT(got.n_channels, 2);
    EXPECT_EQ_INT(got.n_frames, 8000);
    audio_file_fini(&got);
    /* overwrite in place with something else */
    REQUIRE_OK(audio_file_write(p, &b, AUDIO_FILE_FLAC_16));
    REQUIRE_OK(audio_file_read(&got, p, NULL));
    EXPECT_EQ_INT(got.n_channels, 1);
    EXPECT_EQ_INT(got.sample_rate_hz, 8000);
    EXPECT_EQ_INT(count_tmp_files(), 0);
    audio_file_fini(&got);
    audio_file_fini(&a);
    audio_file_fini(&b);
}

const struct test tests_audio[] = {
    TEST(test_roundtrip_lossless),
    TEST(test_integer_scaling_exact),
    TEST(test_roundtrip_lossy),
    TEST(test_mono_mixdown),
    TEST(test_time_range),
    TEST(test_time_range_huge),
    TEST(test_probe_and_formats),
    TEST(test_sox_files),
    TEST(test_bad_paths),
    TEST(test_header_only),
    TEST(test_truncated_wav),
    TEST(test_truncated_compressed),
    TEST(test_corrupt_data),
    TEST(test_nan_inf_samples),
    TEST(test_bad_header_fields),
    TEST(test_absurd_frame_count),
    TEST(test_write_atomic_and_errors),
    {0},
};
