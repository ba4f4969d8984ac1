/* audio_file.c: audio files in and out through libsndfile (the only file that includes it).
 *
 * Key idea: the header is a claim, not a fact. Reading decodes in chunks until EOF into a
 * geometrically growing buffer (the first reservation is capped, so a header promising
 * 2^40 frames allocates nothing of the kind), then compares what came out with what the
 * header promised and with libsndfile's parse log, which is where it records the damage
 * it silently repairs: a WAV/AIFF whose data chunk runs past the end of the file
 * ("data : 96000 (should be 49956)"; libsndfile shortens `frames` to match), an Ogg stream
 * without its end-of-stream page, a hole in an Ogg stream. Decoder errors mid-file
 * (FLAC losing sync) come back through sf_error() on the handle.
 *
 * Writing goes to a temporary file opened O_EXCL beside the target, which is fsync'ed and
 * renamed over it. Integer PCM is quantised here so a clip read from a b-bit file writes
 * back bit-exact.
 *
 * ref: reference/audio-ui-testability.md section 3 (how libsndfile 1.2.0
 *      reports damage), libsndfile src/wav.c wav_read_header (the "should be" log lines),
 *      librosa/core/audio.py __soundfile_load (offset / duration in frames: int(t * sr))
 *      and to_mono (np.mean over channels).
 */
#include "basin/audio/audio_file.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>

#include "basin/core/log.h"
#include "basin/core/fs.h"
#include "basin/core/mem.h"
#include "basin/core/status.h"

/* First reservation for decoded samples when the header's frame count is larger than
 * this (or unknown), and the largest single growth step, in samples (all channels). */
#define RESERVE_MAX_SAMPLES (1L << 22)
#define GROW_MAX_SAMPLES (1L << 25)
/* Frames per chunk when skipping to an offset or writing. */
#define CHUNK_FRAMES 4096
/* A WAV data chunk this large is a streaming placeholder (sox / ffmpeg writing to a pipe
 * put 0x7ffff000 or 0xffffffff there), not a length the file should have. */
#define STREAMED_DATA_BYTES 0x7ffff000LL
/* MP3 lengths come from the Xing/LAME header when there is one and are estimated from the
 * file size otherwise: only a shortfall beyond 1% and two MPEG frames counts as truncation. */
#define MPEG_SLACK_FRAMES 2304

/* ---- small helpers ----------------------------------------------------------------- */

void audio_file_init(struct audio_file *af)
{
    memset(af, 0, sizeof *af);
}

void audio_file_fini(struct audio_file *af)
{
    if (!af) return;
    mem_free(af->x);
    memset(af, 0, sizeof *af);
}

enum status audio_file_alloc(struct audio_file *af, int n_channels, long n_frames,
                             int sample_rate_hz)
{
    CHECK(n_channels >= 1 && n_frames >= 0);
    audio_file_init(af);
    size_t n = mem_mul((size_t)n_channels, (size_t)n_frames);
    if (n == 0 && n_frames > 0) return STATUS_INVALID;
    float *x = mem_calloc(n, sizeof(float));
    if (!x) return STATUS_NOMEM;
    af->x = x;
    af->n_channels = n_channels;
    af->n_frames = n_frames;
    af->sample_rate_hz = sample_rate_hz;
    return STATUS_OK;
}

/* Bytes per frame of an uncompressed subtype, or 0 when the subtype is compressed. */
static long bytes_per_sample(int format)
{
    switch (format & SF_FORMAT_SUBMASK) {
    case SF_FORMAT_PCM_S8:
    case SF_FORMAT_PCM_U8:
    case SF_FORMAT_ULAW:
    case SF_FORMAT_ALAW: return 1;
    case SF_FORMAT_PCM_16: return 2;
    case SF_FORMAT_PCM_24: return 3;
    case SF_FORMAT_PCM_32:
    case SF_FORMAT_FLOAT: return 4;
    case SF_FORMAT_DOUBLE: return 8;
    default: return 0;
    }
}

static void format_name(int format, char *buf, size_t n_buf)
{
    SF_FORMAT_INFO major = {.format = format & SF_FORMAT_TYPEMASK};
    SF_FORMAT_INFO sub = {.format = format & SF_FORMAT_SUBMASK};
    const char *a = "unknown container", *b = "unknown encoding";
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &major, sizeof major) == 0 && major.name)
        a = major.name;
    if (sf_command(NULL, SFC_GET_FORMAT_INFO, &sub, sizeof sub) == 0 && sub.name) b = sub.name;
    snprintf(buf, n_buf, "%s, %s", a, b);
}

/* ---- opening ----------------------------------------------------------------------- */

/* Look at the path before libsndfile does, so the common failures get precise messages
 * (libsndfile says "Format not recognised" for both an empty file and a directory). */
static enum status check_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT) return status_set(STATUS_NOT_FOUND, "%s: no such file", path);
        return status_set(STATUS_IO, "%s: cannot open: %s", path, strerror(errno));
    }
    struct stat st;
    enum status s = STATUS_OK;
    if (fstat(fd, &st) != 0)
        s = status_set(STATUS_IO, "%s: cannot stat: %s", path, strerror(errno));
    else if (S_ISDIR(st.st_mode))
        s = status_set(STATUS_IO, "%s: is a directory, not an audio file", path);
    else if (S_ISREG(st.st_mode) && st.st_size == 0)
        s = status_set(STATUS_FORMAT, "%s: empty file (0 bytes)", path);
    close(fd);
    return s;
}

/* The format tag of a RIFF/WAVE file's 'fmt ' chunk, or -1 when path is not one. Used only
 * to explain a failed open: libsndfile calls an unknown tag a "malformed 'fmt ' chunk". */
static int wav_format_tag(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -1;
    unsigned char h[12];
    int tag = -1;
    if (fread(h, 1, 12, fp) == 12 && !memcmp(h, "RIFF", 4) && !memcmp(h + 8, "WAVE", 4)) {
        for (int i = 0; i < 64 && fread(h, 1, 8, fp) == 8; i++) {
            unsigned long size = h[4] | h[5] << 8 | h[6] << 16 | (unsigned long)h[7] << 24;
            if (!memcmp(h, "fmt ", 4)) {
                if (size >= 2 && fread(h, 1, 2, fp) == 2) tag = h[0] | h[1] << 8;
                break;
            }
            if (fseek(fp, (long)(size + (size & 1)), SEEK_CUR) != 0) break;
        }
    }
    fclose(fp);
    return tag;
}

/* WAV format tags libsndfile decodes (ref: libsndfile src/wav.c wav_read_header). */
static int wav_tag_known(int tag)
{
    static const int known[] = {0x0001, 0x0002, 0x0003, 0x0006, 0x0007, 0x0011,
                                0x0031, 0x0040, 0x0101, 0x0102, 0xfffe};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (tag == known[i]) return 1;
    return 0;
}

/* Turn a failed sf_open into a status. sf_error(NULL) holds libsndfile's internal code:
 * the public SF_ERR_* values are its first five, the rest are specific (message text). */
static enum status open_error(const char *path)
{
    int e = sf_error(NULL);
    const char *msg = sf_strerror(NULL);
    int tag = e != SF_ERR_SYSTEM ? wav_format_tag(path) : -1;
    if (tag >= 0 && !wav_tag_known(tag))
        return status_set(STATUS_UNSUPPORTED,
                          "%s: unsupported WAV encoding (format tag 0x%04x; libsndfile: %s)", path,
                          tag, msg);
    switch (e) {
    case SF_ERR_UNRECOGNISED_FORMAT:
        return status_set(STATUS_FORMAT,
                          "%s: unrecognised format: not an audio file libsndfile can read, "
                          "or its header is corrupt",
                          path);
    case SF_ERR_SYSTEM: return status_set(STATUS_IO, "%s: %s", path, msg);
    case SF_ERR_MALFORMED_FILE:
        return status_set(STATUS_FORMAT, "%s: malformed or truncated file (libsndfile: %s)",
                          path, msg);
    case SF_ERR_UNSUPPORTED_ENCODING:
        return status_set(STATUS_UNSUPPORTED, "%s: unsupported encoding (libsndfile: %s)",
                          path, msg);
    default: break;
    }
    if (strstr(msg, "'data' chunk") || strstr(msg, "SSND"))
        return status_set(STATUS_FORMAT, "%s: header only, no audio data (libsndfile: %s)",
                          path, msg);
    if (strstr(msg, "nimplemented") || strstr(msg, "not supported"))
        return status_set(STATUS_UNSUPPORTED, "%s: unsupported encoding (libsndfile: %s)", path,
                          msg);
    if (strstr(msg, "SF_INFO"))
        return status_set(STATUS_FORMAT,
                          "%s: invalid header: sample rate, channel count or sample format "
                          "out of range (libsndfile: %s)",
                          path, msg);
    if (strstr(msg, "hannel"))
        return status_set(STATUS_FORMAT, "%s: bad channel count (libsndfile: %s)", path, msg);
    if (strstr(msg, "ample rate") || strstr(msg, "amplerate"))
        return status_set(STATUS_FORMAT, "%s: bad sample rate (libsndfile: %s)", path, msg);
    return status_set(STATUS_FORMAT, "%s: malformed header (libsndfile: %s)", path, msg);
}

static enum status check_header(const char *path, const SF_INFO *si)
{
    if (si->channels < 1)
        return status_set(STATUS_FORMAT, "%s: %d channels", path, si->channels);
    if (si->channels > AUDIO_FILE_MAX_CHANNELS)
        return status_set(STATUS_FORMAT, "%s: absurd channel count %d (at most %d)", path,
                          si->channels, AUDIO_FILE_MAX_CHANNELS);
    if (si->samplerate < AUDIO_FILE_MIN_RATE_HZ || si->samplerate > AUDIO_FILE_MAX_RATE_HZ)
        return status_set(STATUS_FORMAT, "%s: absurd sample rate %d Hz (expected %d..%d)",
                          path, si->samplerate, AUDIO_FILE_MIN_RATE_HZ,
                          AUDIO_FILE_MAX_RATE_HZ);
    if (si->frames < 0)
        return status_set(STATUS_FORMAT, "%s: negative frame count %lld in header", path,
                          (long long)si->frames);
    return STATUS_OK;
}

static enum status open_read(const char *path, SNDFILE **out, SF_INFO *si)
{
    enum status s = check_path(path);
    if (s) return s;
    memset(si, 0, sizeof *si);
    SNDFILE *f = sf_open(path, SFM_READ, si);
    if (!f) return open_error(path);
    if ((s = check_header(path, si))) {
        sf_close(f);
        return s;
    }
    *out = f;
    return STATUS_OK;
}

enum status audio_file_probe(const char *path, struct audio_file_info *info)
{
    memset(info, 0, sizeof *info);
    SNDFILE *f = NULL;
    SF_INFO si;
    enum status s = open_read(path, &f, &si);
    if (s) return s;
    info->n_channels = si.channels;
    info->sample_rate_hz = si.samplerate;
    info->n_frames = si.frames == SF_COUNT_MAX ? -1 : (long)si.frames;
    format_name(si.format, info->format, sizeof info->format);
    sf_close(f);
    return STATUS_OK;
}

/* ---- damage found in libsndfile's parse log ---------------------------------------- */

struct damage {
    long long data_promised;  /* bytes of audio the header claims, -1: no claim beyond the file */
    long long data_present;   /* bytes actually in the file */
    int no_eos;               /* Ogg: file ended without an end-of-stream page */
    int hole;                 /* Ogg: libogg reported a hole (missing or corrupt pages) */
};

static void scan_log(SNDFILE *f, struct damage *d)
{
    char log[8192];
    memset(d, 0, sizeof *d);
    d->data_promised = -1;
    log[0] = 0;
    sf_command(f, SFC_GET_LOG_INFO, log, sizeof log);
    log[sizeof log - 1] = 0;
    for (char *line = log, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = 0;
        while (*line == ' ') line++;
        long long a, b;
        char marker[8];
        /* wav.c / aiff.c: "data : %D (should be %D)", "SSND : %u (should be %D)" */
        if (sscanf(line, "%4s : %lld (should be %lld)", marker, &a, &b) == 3 &&
            (!strcmp(marker, "data") || !strcmp(marker, "SSND")) && a > b &&
            a < STREAMED_DATA_BYTES) {
            long long hdr = !strcmp(marker, "SSND") ? 8 : 0; /* offset + block size */
            d->data_promised = a - hdr;
            d->data_present = b - hdr;
        }
        if (strstr(line, "without an End-Of-Stream")) d->no_eos = 1;
        if (strstr(line, "reports a hole")) d->hole = 1;
    }
}

/* ---- reading ----------------------------------------------------------------------- */

static enum status too_long(const char *path, long max_samples)
{
    return status_set(STATUS_NOMEM,
                      "%s: decodes to more than %ld samples (the max_samples cap); read it in "
                      "parts with an offset and duration",
                      path, max_samples);
}

/* Grow *buf to at least need_samples, doubling up to GROW_MAX_SAMPLES per step, never past
 * limit (max_samples plus one frame, which is how EOF right at the cap is seen). */
static enum status grow(float **buf, long *cap_samples, long need_samples, long limit,
                        long max_samples, const char *path)
{
    if (need_samples > limit) return too_long(path, max_samples);
    long cap = *cap_samples;
    while (cap < need_samples)
        cap += cap >= GROW_MAX_SAMPLES ? GROW_MAX_SAMPLES : cap > 0 ? cap : 4096;
    if (cap > limit) cap = limit;
    float *b = mem_realloc(*buf, (size_t)cap * sizeof(float));
    if (!b) return STATUS_NOMEM;
    *buf = b;
    *cap_samples = cap;
    return STATUS_OK;
}

/* Skip n frames by decoding them (containers that cannot seek, or unknown lengths). */
static long skip_frames(SNDFILE *f, int n_channels, long n)
{
    float *tmp = mem_alloc((size_t)CHUNK_FRAMES * (size_t)n_channels * sizeof(float));
    if (!tmp) return -1;
    long done = 0;
    while (done < n) {
        long k = n - done < CHUNK_FRAMES ? n - done : CHUNK_FRAMES;
        sf_count_t r = sf_readf_float(f, tmp, k);
        if (r <= 0) break;
        done += (long)r;
    }
    mem_free(tmp);
    return done;
}

/* First NaN / Inf in the interleaved (T, C) buffer, as a status. */
static enum status check_finite(const float *x, long n_frames, int n_channels, long offset,
                                int rate, const char *path)
{
    long n = n_frames * n_channels;
    for (long i = 0; i < n; i++) {
        if (isfinite(x[i])) continue;
        long t = i / n_channels + offset;
        return status_set(STATUS_NUMERIC, "%s: sample %ld of channel %d (%.4f s) is %s", path,
                          t, (int)(i % n_channels), (double)t / rate,
                          isnan(x[i]) ? "NaN" : "Inf");
    }
    return STATUS_OK;
}

/* Decide whether what was decoded is damaged; sets the detail message and returns 1 if so. */
static int find_damage(const char *path, SNDFILE *f, const SF_INFO *si, long off, long want,
                       long got)
{
    struct damage d;
    scan_log(f, &d);
    long end = off + got;
    int err = sf_error(f);
    if (err) {
        status_set(STATUS_FORMAT, "%s: corrupt data after %ld frames (libsndfile: %s)", path,
                   end, sf_strerror(f));
        return 1;
    }
    if (d.hole) {
        status_set(STATUS_FORMAT,
                   "%s: corrupt: hole in the Ogg stream (pages missing or damaged), %ld "
                   "frames decoded",
                   path, end);
        return 1;
    }
    if (d.data_promised > 0) {
        long bps = bytes_per_sample(si->format) * si->channels;
        if (bps > 0)
            status_set(STATUS_FORMAT,
                       "%s: truncated: header promises %lld frames, %lld in the file", path,
                       d.data_promised / bps, d.data_present / bps);
        else
            status_set(STATUS_FORMAT,
                       "%s: truncated: header promises %lld bytes of audio, %lld in the file",
                       path, d.data_promised, d.data_present);
        return 1;
    }
    /* libsndfile logs the missing end-of-stream page for some intact files too (it reads
     * past the last page); only when it could not find the stream's end either is the
     * file cut short. A known length is checked against the frames below instead. */
    if (d.no_eos && si->frames == SF_COUNT_MAX) {
        status_set(STATUS_FORMAT,
                   "%s: truncated: the Ogg stream ends without its end-of-stream page, %ld "
                   "frames decoded",
                   path, end);
        return 1;
    }
    if (si->frames > 0 && si->frames != SF_COUNT_MAX) {
        long promised = (long)si->frames;
        long expect = want >= 0 && off + want < promised ? off + want : promised;
        long slack = 0;
        if ((si->format & SF_FORMAT_TYPEMASK) == SF_FORMAT_MPEG)
            slack = MPEG_SLACK_FRAMES + promised / 100;
        if (end + slack < expect) {
            status_set(STATUS_FORMAT, "%s: truncated: header promises %ld frames, %ld decoded",
                       path, promised, end);
            return 1;
        }
    }
    return 0;
}

enum status audio_file_read(struct audio_file *af, const char *path,
                            const struct audio_file_read_opts *opts)
{
    struct audio_file_read_opts o = {0};
    if (opts) o = *opts;
    long max_samples = o.max_samples > 0 ? o.max_samples : AUDIO_FILE_DEFAULT_MAX_SAMPLES;
    memset(af, 0, sizeof *af);
    if (!(o.offset_s >= 0 && isfinite(o.offset_s)) || !isfinite(o.duration_s))
        return status_set(STATUS_INVALID, "%s: bad time range: offset %g s, duration %g s", path,
                          o.offset_s, o.duration_s);

    SNDFILE *f = NULL;
    SF_INFO si;
    float *buf = NULL;
    enum status s = open_read(path, &f, &si);
    if (s) return s;
    const int C = si.channels, rate = si.samplerate;
    const int known = si.frames > 0 && si.frames != SF_COUNT_MAX;

    /* ref: librosa __soundfile_load: seek(int(offset * sr)), read(int(duration * sr)).
     * Converting a double beyond LONG_MAX to long is undefined: an offset that far is past
     * the end of any file, a duration that long reads to the end. */
    const double max_frames = 0x1p62;
    if (o.offset_s * rate >= max_frames) {
        s = status_set(STATUS_INVALID, "%s: offset %g s is past the end", path, o.offset_s);
        goto fail;
    }
    long off = (long)(o.offset_s * rate);
    long want = o.duration_s <= 0 ? -1
                : o.duration_s * rate >= max_frames ? -1 : (long)(o.duration_s * rate);
    if (want == 0) {
        s = status_set(STATUS_INVALID, "%s: duration %g s is shorter than one frame at %d Hz",
                       path, o.duration_s, rate);
        goto fail;
    }
    if (off > 0) {
        if (known && off >= si.frames) {
            s = status_set(STATUS_INVALID, "%s: offset %.3f s is past the end (%.3f s)", path,
                           o.offset_s, (double)si.frames / rate);
            goto fail;
        }
        long at;
        if (known && si.seekable) {
            if ((at = (long)sf_seek(f, off, SEEK_SET)) < 0) {
                s = status_set(STATUS_FORMAT, "%s: cannot seek to frame %ld (libsndfile: %s)",
                               path, off, sf_strerror(f));
                goto fail;
            }
        } else if ((at = skip_frames(f, C, off)) < 0) {
            s = STATUS_NOMEM;
            goto fail;
        }
        if (at < off) {
            if (find_damage(path, f, &si, 0, -1, at))
                s = STATUS_FORMAT;
            else
                s = status_set(STATUS_INVALID, "%s: offset %.3f s is past the end (%.3f s)",
                               path, o.offset_s, (double)at / rate);
            goto fail;
        }
    }

    /* Reserve what the header promises, within reason; grow as data actually arrives. */
    long cap = 0, got = 0, limit = max_samples + C;
    long hint = known ? (long)si.frames - off + 1 : CHUNK_FRAMES;
    if (want > 0 && want < hint) hint = want;
    long reserve = RESERVE_MAX_SAMPLES / C > CHUNK_FRAMES ? RESERVE_MAX_SAMPLES / C : CHUNK_FRAMES;
    if (hint > reserve) hint = reserve;
    if (hint < 1) hint = 1;
    if ((s = grow(&buf, &cap, hint * C < limit ? hint * C : limit, limit, max_samples, path)))
        goto fail;
    for (;;) {
        long room = cap / C - got;
        if (want >= 0 && want - got < room) room = want - got;
        if (room <= 0) {
            if (want >= 0 && got >= want) break;
            if ((s = grow(&buf, &cap, (got + 1) * C, limit, max_samples, path))) goto fail;
            continue;
        }
        sf_count_t r = sf_readf_float(f, buf + (size_t)got * C, room);
        if (r <= 0) break;
        got += (long)r;
    }
    if (got * C > max_samples) {
        s = too_long(path, max_samples);
        goto fail;
    }

    if (find_damage(path, f, &si, off, want, got)) {
        if (!o.allow_partial || got == 0) {
            s = STATUS_FORMAT;
            goto fail;
        }
        log_warn("%s (keeping the %ld frames decoded)", status_detail(), got);
        status_clear();
        af->partial = 1;
    }
    if (got == 0) {
        s = status_set(STATUS_FORMAT, "%s: header only, no audio data (0 frames decoded)", path);
        goto fail;
    }
    if ((s = check_finite(buf, got, C, off, rate, path))) goto fail;
    sf_close(f);
    f = NULL;

    /* Interleaved (T, C) -> planar (C, T), or the channel mean when asked for mono. */
    int out_c = o.mono ? 1 : C;
    float *x = mem_alloc((size_t)got * (size_t)out_c * sizeof(float));
    if (!x) {
        s = STATUS_NOMEM;
        goto fail;
    }
    if (out_c == C) {
        for (int c = 0; c < C; c++)
            for (long t = 0; t < got; t++) x[(size_t)c * got + t] = buf[(size_t)t * C + c];
    } else {
        /* ref: librosa.to_mono = np.mean(y, axis=-2): float32 sum in channel order, / C. */
        for (long t = 0; t < got; t++) {
            float acc = buf[(size_t)t * C];
            for (int c = 1; c < C; c++) acc += buf[(size_t)t * C + c];
            x[t] = acc / (float)C;
        }
    }
    mem_free(buf);
    af->x = x;
    af->n_channels = out_c;
    af->n_frames = got;
    af->sample_rate_hz = rate;
    return STATUS_OK;

fail:
    if (f) sf_close(f);
    mem_free(buf);
    memset(af, 0, sizeof *af);
    return s;
}

enum status audio_file_to_mono(struct audio_file *af)
{
    if (af->n_channels <= 1) return STATUS_OK;
    CHECK(af->x || af->n_frames == 0);
    const int C = af->n_channels;
    const long T = af->n_frames;
    float *y = mem_alloc((size_t)(T > 0 ? T : 1) * sizeof(float));
    if (!y) return STATUS_NOMEM;
    /* ref: librosa.to_mono = np.mean(y, axis=-2): float32 sum in channel order, / C. */
    for (long t = 0; t < T; t++) {
        float acc = af->x[t];
        for (int c = 1; c < C; c++) acc += af->x[(size_t)c * T + t];
        y[t] = acc / (float)C;
    }
    mem_free(af->x);
    af->x = y;
    af->n_channels = 1;
    return STATUS_OK;
}

/* ---- formats ----------------------------------------------------------------------- */

#define FORMAT_NAME(code, name, ext) name,
#define FORMAT_EXT(code, name, ext) ext,
static const char *const format_names[] = {AUDIO_FILE_FORMAT_LIST(FORMAT_NAME)};
static const char *const format_exts[] = {AUDIO_FILE_FORMAT_LIST(FORMAT_EXT)};
#undef FORMAT_NAME
#undef FORMAT_EXT

/* How libsndfile writes each format. */
static const struct {
    int sf_format;
    int bits;   /* integer PCM quantised here; 0: floats handed to libsndfile */
    int lossy;
} formats[] = {
    [AUDIO_FILE_WAV_U8] = {SF_FORMAT_WAV | SF_FORMAT_PCM_U8, 8, 0},
    [AUDIO_FILE_WAV_16] = {SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16, 0},
    [AUDIO_FILE_WAV_24] = {SF_FORMAT_WAV | SF_FORMAT_PCM_24, 24, 0},
    [AUDIO_FILE_WAV_32] = {SF_FORMAT_WAV | SF_FORMAT_PCM_32, 32, 0},
    [AUDIO_FILE_WAV_F32] = {SF_FORMAT_WAV | SF_FORMAT_FLOAT, 0, 0},
    [AUDIO_FILE_WAV_F64] = {SF_FORMAT_WAV | SF_FORMAT_DOUBLE, 0, 0},
    [AUDIO_FILE_FLAC_16] = {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16, 0},
    [AUDIO_FILE_FLAC_24] = {SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 24, 0},
    [AUDIO_FILE_AIFF_16] = {SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 16, 0},
    [AUDIO_FILE_VORBIS] = {SF_FORMAT_OGG | SF_FORMAT_VORBIS, 0, 1},
    [AUDIO_FILE_OPUS] = {SF_FORMAT_OGG | SF_FORMAT_OPUS, 0, 1},
    [AUDIO_FILE_MP3] = {SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III, 0, 1},
};
_Static_assert(sizeof formats / sizeof formats[0] == AUDIO_FILE_FORMAT_COUNT,
               "formats[] must follow AUDIO_FILE_FORMAT_LIST");

static int format_ok(enum audio_file_format fmt)
{
    return (unsigned)fmt < AUDIO_FILE_FORMAT_COUNT;
}

const char *audio_file_format_name(enum audio_file_format fmt)
{
    return format_ok(fmt) ? format_names[fmt] : "?";
}

const char *audio_file_format_ext(enum audio_file_format fmt)
{
    return format_ok(fmt) ? format_exts[fmt] : "?";
}

int audio_file_format_lossy(enum audio_file_format fmt)
{
    return format_ok(fmt) && formats[fmt].lossy;
}

enum status audio_file_format_parse(const char *name, enum audio_file_format *fmt)
{
    char list[256] = "";
    for (int i = 0; i < AUDIO_FILE_FORMAT_COUNT; i++) {
        if (!strcmp(name, format_names[i])) {
            *fmt = (enum audio_file_format)i;
            return STATUS_OK;
        }
        size_t n = strlen(list);
        snprintf(list + n, sizeof list - n, "%s%s", i ? ", " : "", format_names[i]);
    }
    return status_set(STATUS_INVALID, "unknown audio format '%s' (known: %s)", name, list);
}

/* Why fmt cannot store this rate / channel count, or NULL. libsndfile's sf_format_check
 * does not know the codecs' own limits, and sf_open's messages for them are vague. */
static const char *format_limit(enum audio_file_format fmt, int rate, int n_channels)
{
    switch (fmt) {
    case AUDIO_FILE_OPUS:
        if (rate != 8000 && rate != 12000 && rate != 16000 && rate != 24000 && rate != 48000)
            return "Opus stores only 8000, 12000, 16000, 24000 or 48000 Hz";
        if (n_channels > 8) return "Opus (as libsndfile writes it) stores at most 8 channels";
        return NULL;
    case AUDIO_FILE_MP3:
        if (n_channels > 2) return "MP3 stores at most 2 channels";
        switch (rate) {
        case 8000: case 11025: case 12000: case 16000: case 22050: case 24000: case 32000:
        case 44100: case 48000: return NULL;
        default:
            return "MP3 stores only 8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100 or "
                   "48000 Hz";
        }
    case AUDIO_FILE_VORBIS:
        return n_channels > 255 ? "Vorbis stores at most 255 channels" : NULL;
    case AUDIO_FILE_FLAC_16:
    case AUDIO_FILE_FLAC_24:
        if (n_channels > 8) return "FLAC stores at most 8 channels";
        return rate > 655350 ? "FLAC stores at most 655350 Hz" : NULL;
    default: return NULL;
    }
}

int audio_file_format_supported(enum audio_file_format fmt, int sample_rate_hz, int n_channels)
{
    if (!format_ok(fmt) || n_channels < 1 || n_channels > AUDIO_FILE_MAX_CHANNELS) return 0;
    if (format_limit(fmt, sample_rate_hz, n_channels)) return 0;
    SF_INFO si = {.samplerate = sample_rate_hz, .channels = n_channels,
                  .format = formats[fmt].sf_format};
    return sf_format_check(&si) != 0;
}

/* ---- writing ----------------------------------------------------------------------- */

/* round-half-even(x * 2^(bits-1)) clipped to the b-bit range, left-aligned in an int the
 * way libsndfile's int / short writers expect (24-bit in the top 3 bytes of an int). */
static inline int quantise(float x, int bits)
{
    double scale = ldexp(1.0, bits - 1), v = (double)x * scale;
    if (v > scale - 1) v = scale - 1;
    if (v < -scale) v = -scale;
    long q = lrint(v);
    return (int)(q * (bits == 24 ? 256 : bits == 8 ? 256 : 1));
}

static enum status write_frames(SNDFILE *f, const struct audio_file *af, int bits,
                                const char *path)
{
    const int C = af->n_channels;
    const long T = af->n_frames;
    size_t n = (size_t)CHUNK_FRAMES * (size_t)C;
    void *tmp = mem_alloc(n * (bits == 0 ? sizeof(float) : sizeof(int)));
    if (!tmp) return STATUS_NOMEM;
    enum status s = STATUS_OK;
    for (long t0 = 0; t0 < T && !s; t0 += CHUNK_FRAMES) {
        long k = T - t0 < CHUNK_FRAMES ? T - t0 : CHUNK_FRAMES;
        sf_count_t w;
        if (bits == 0) {
            float *y = tmp;
            for (long t = 0; t < k; t++)
                for (int c = 0; c < C; c++) y[t * C + c] = af->x[(size_t)c * T + t0 + t];
            w = sf_writef_float(f, y, k);
        } else if (bits <= 16) {
            short *y = tmp;
            for (long t = 0; t < k; t++)
                for (int c = 0; c < C; c++)
                    y[t * C + c] = (short)quantise(af->x[(size_t)c * T + t0 + t], bits);
            w = sf_writef_short(f, y, k);
        } else {
            int *y = tmp;
            for (long t = 0; t < k; t++)
                for (int c = 0; c < C; c++)
                    y[t * C + c] = quantise(af->x[(size_t)c * T + t0 + t], bits);
            w = sf_writef_int(f, y, k);
        }
        if (w != k)
            s = status_set(STATUS_IO, "%s: write failed after %ld frames (libsndfile: %s)", path,
                           t0 + (w > 0 ? (long)w : 0), sf_strerror(f));
    }
    mem_free(tmp);
    return s;
}

enum status audio_file_write(const char *path, const struct audio_file *af,
                             enum audio_file_format fmt)
{
    CHECK(format_ok(fmt));
    CHECK(af->n_frames >= 0 && (af->x || af->n_frames == 0));
    const int C = af->n_channels, rate = af->sample_rate_hz;
    if (C < 1 || C > AUDIO_FILE_MAX_CHANNELS)
        return status_set(STATUS_INVALID, "%s: cannot write %d channels", path, C);
    if (rate < AUDIO_FILE_MIN_RATE_HZ || rate > AUDIO_FILE_MAX_RATE_HZ)
        return status_set(STATUS_INVALID, "%s: cannot write sample rate %d Hz (expected %d..%d)",
                          path, rate, AUDIO_FILE_MIN_RATE_HZ, AUDIO_FILE_MAX_RATE_HZ);
    const char *why = format_limit(fmt, rate, C);
    if (why)
        return status_set(STATUS_UNSUPPORTED, "%s: cannot write %d channels at %d Hz as %s: %s",
                          path, C, rate, format_names[fmt], why);
    SF_INFO si = {.samplerate = rate, .channels = C, .format = formats[fmt].sf_format};
    if (!sf_format_check(&si))
        return status_set(STATUS_UNSUPPORTED,
                          "%s: this libsndfile cannot write %s with %d channels at %d Hz", path,
                          format_names[fmt], C, rate);
    for (long i = 0; i < af->n_frames * C; i++)
        if (!isfinite(af->x[i]))
            return status_set(STATUS_NUMERIC,
                              "%s: not written: sample %ld of channel %ld is %s", path,
                              i % af->n_frames, i / af->n_frames,
                              isnan(af->x[i]) ? "NaN" : "Inf");

    struct fs_atomic tmp;
    enum status s = fs_atomic_begin(&tmp, path, 0);
    if (s) return s;
    /* libsndfile writes through the descriptor and leaves it open (close_desc false). */
    SNDFILE *f = sf_open_fd(tmp.fd, SFM_WRITE, &si, SF_FALSE);
    if (!f) {
        s = status_set(STATUS_UNSUPPORTED, "%s: cannot write %s (libsndfile: %s)", path,
                       format_names[fmt], sf_strerror(NULL));
        goto fail;
    }
    if ((s = write_frames(f, af, formats[fmt].bits, path))) goto fail;
    int e = sf_close(f);
    f = NULL;
    if (e) {
        s = status_set(STATUS_IO, "%s: finishing the file failed (libsndfile: %s)", path,
                       sf_error_number(e));
        goto fail;
    }
    return fs_atomic_commit(&tmp);

fail:
    if (f) sf_close(f);
    fs_atomic_abort(&tmp);
    return s;
}
