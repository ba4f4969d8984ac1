/* audio_file.h: decode any audio file libsndfile reads into float samples, and write
 * WAV / FLAC / Ogg Vorbis / Opus / MP3 / AIFF atomically.
 *
 * A decoded clip is planar: x is (C, T), channel c's T samples at x + c * n_frames, which is
 * the (in_ch, time) layout the data layer feeds to models. Integer PCM is scaled to [-1, 1)
 * as libsndfile (and so soundfile / librosa) does: a 16-bit sample k reads as k / 32768.
 * Float files are returned as stored (no clipping, no rescaling).
 *
 * Reading never trusts the header's frame count: it decodes in chunks until EOF into a
 * growing buffer (the first reservation is capped at 2^22 samples, so a header claiming
 * 2^40 frames allocates nothing of the kind), then checks what came out against what the
 * header promised and against libsndfile's parse log (SFC_GET_LOG_INFO).
 *
 * Failure policy (every message is one line and starts with the path as given):
 *   STATUS_NOT_FOUND   missing file
 *   STATUS_IO          a directory, an unreadable path, a read error
 *   STATUS_FORMAT      empty file (0 bytes); header only, no audio data; random bytes or an
 *                      unrecognised format; a malformed header; 0 channels or a sample rate
 *                      outside AUDIO_FILE_MIN/MAX_RATE_HZ; truncated (a WAV / AIFF data
 *                      chunk longer than the file: "header promises N frames, M in the
 *                      file"; fewer frames decoded than the header promises; an Ogg / Opus
 *                      stream of unknown length ending without its end-of-stream page; an
 *                      MP3 more than 1% short of its Xing / estimated length); corrupt data
 *                      (a decoder error mid-file such as FLAC losing sync, a hole in an Ogg
 *                      stream)
 *   STATUS_NUMERIC     a NaN or Inf sample (possible in float WAVs)
 *   STATUS_UNSUPPORTED an encoding libsndfile recognises but cannot decode (MP3 or WMA inside
 *                      a WAV, an unknown WAVE_FORMAT_EXTENSIBLE sub-format); writing a format
 *                      this libsndfile build cannot write, or a rate / channel count the
 *                      codec does not support (Opus: 8/12/16/24/48 kHz; MP3: <= 2 channels)
 *   STATUS_INVALID     bad read options (negative offset, offset past the end, a duration
 *                      under one frame); writing a rate outside the limits
 *   STATUS_NOMEM       allocation failed, or the clip decodes to more than max_samples
 * Truncated or corrupt files are an error by default: the safe choice for training data.
 * With allow_partial set, a file damaged after some valid audio (a WAV cut mid-data, a FLAC
 * that loses sync, an Ogg with a hole) returns the frames decoded before the damage with
 * `partial` set and the same message logged as a warning; a file with no decodable audio
 * is an error either way. Random bytes that happen to decode as valid PCM (integer WAV data
 * overwritten with noise) cannot be told from audio; in float WAVs they show up as NaN/Inf.
 *
 * stderr: libsndfile's MP3 decoder (libmpg123) prints warnings to stderr for damaged MP3s
 * ("Warning: Xing stream size off by more than 1%..."). This module never prints, but it
 * cannot silence a library: a curses UI must redirect fd 2 for the session.
 *
 * Library leak: libvorbisenc 1.3.7 leaks about 2.8 KB per 6-channel Vorbis file written at
 * 44.1 / 48 kHz (inside vorbis_encode_setup_init; not reachable from here).
 *
 * Thread safety: functions are reentrant on distinct files, except that libsndfile keeps
 * the error of a failed open in one global, so two threads failing an open at the same
 * instant may see each other's libsndfile detail text (the status code stays right).
 */
#ifndef BASIN_AUDIO_AUDIO_FILE_H
#define BASIN_AUDIO_AUDIO_FILE_H

#include "basin/core/status.h"

/* Sanity limits: a header outside them is rejected as absurd. */
#define AUDIO_FILE_MAX_CHANNELS 1024
#define AUDIO_FILE_MIN_RATE_HZ 1000
#define AUDIO_FILE_MAX_RATE_HZ 768000
/* Default cap on decoded samples (all channels): 2^30 floats = 4 GiB. Longer recordings are
 * read in parts with offset_s / duration_s. */
#define AUDIO_FILE_DEFAULT_MAX_SAMPLES (1L << 30)

/* A decoded clip. Caller storage; audio_file_read / audio_file_alloc fill it and
 * audio_file_fini releases it. */
struct audio_file {
    float *x;           /* (C, T) planar, owned; 64-byte aligned; NULL when empty */
    int n_channels;     /* C */
    long n_frames;      /* T */
    int sample_rate_hz;
    int partial;        /* 1: truncated or damaged file read with allow_partial */
};

/* C = n_channels, T = n_frames. Channel c of af: (T). */
static inline float *audio_file_channel(const struct audio_file *af, int c)
{
    return af->x + (long)c * af->n_frames;
}

struct audio_file_read_opts {
    double offset_s;    /* start; frames = (long)(offset_s * rate), as librosa.load */
    double duration_s;  /* <= 0: to the end; else frames = (long)(duration_s * rate) */
    int mono;           /* mix down to one channel (mean over channels) */
    int allow_partial;  /* return the audio before a truncation / corruption (see above) */
    long max_samples;   /* cap on decoded samples, all channels; 0: the default */
};

/* What the header says, without decoding. */
struct audio_file_info {
    int n_channels;
    int sample_rate_hz;
    long n_frames;      /* as libsndfile reads the header (for a WAV cut short: what the file
                         * holds); -1 when the container does not say */
    char format[96];    /* "WAV (Microsoft), Signed 16 bit PCM" */
};

/* Empty af (x NULL, counts 0). */
void audio_file_init(struct audio_file *af);
/* Free af->x (an empty af is a no-op, af NULL too) and leave af empty. */
void audio_file_fini(struct audio_file *af);
/* Fill af with a zeroed (C, T) clip; af's previous contents are not freed. */
enum status audio_file_alloc(struct audio_file *af, int n_channels, long n_frames,
                             int sample_rate_hz);

/* Decode path into af (opts NULL: whole file, all channels, strict). af's previous contents
 * are not freed (it may be uninitialised); on failure af is left empty. A time range past
 * the end of the file is clipped to it (as librosa); an offset at or past the end is an
 * error. Truncation / corruption checks cover the part read, plus what the header reveals
 * at open (a WAV whose data chunk is longer than the file). */
enum status audio_file_read(struct audio_file *af, const char *path,
                            const struct audio_file_read_opts *opts);

/* Read path's header into info. Same open-time errors as audio_file_read. */
enum status audio_file_probe(const char *path, struct audio_file_info *info);

/* Mix af down to one channel in place: y[t] = (x[0][t] + ... + x[C-1][t]) / C, summed in
 * float in channel order then divided, as numpy's mean over axis 0 (librosa.to_mono). A mono
 * af is left as is. */
enum status audio_file_to_mono(struct audio_file *af);

/* Formats the writer knows: code, name (for commands), file extension. */
#define AUDIO_FILE_FORMAT_LIST(X)                                                           \
    X(AUDIO_FILE_WAV_U8, "wav-u8", "wav")                                                   \
    X(AUDIO_FILE_WAV_16, "wav16", "wav")                                                    \
    X(AUDIO_FILE_WAV_24, "wav24", "wav")                                                    \
    X(AUDIO_FILE_WAV_32, "wav32", "wav")                                                    \
    X(AUDIO_FILE_WAV_F32, "wav-f32", "wav")                                                 \
    X(AUDIO_FILE_WAV_F64, "wav-f64", "wav")                                                 \
    X(AUDIO_FILE_FLAC_16, "flac16", "flac")                                                 \
    X(AUDIO_FILE_FLAC_24, "flac24", "flac")                                                 \
    X(AUDIO_FILE_AIFF_16, "aiff16", "aiff")                                                 \
    X(AUDIO_FILE_VORBIS, "vorbis", "ogg")                                                   \
    X(AUDIO_FILE_OPUS, "opus", "opus")                                                      \
    X(AUDIO_FILE_MP3, "mp3", "mp3")

enum audio_file_format {
#define AUDIO_FILE_FORMAT_ENUM(code, name, ext) code,
    AUDIO_FILE_FORMAT_LIST(AUDIO_FILE_FORMAT_ENUM)
#undef AUDIO_FILE_FORMAT_ENUM
    AUDIO_FILE_FORMAT_COUNT
};

/* "wav16"; "?" for an unknown value. */
const char *audio_file_format_name(enum audio_file_format fmt);
/* "wav"; "?" for an unknown value. */
const char *audio_file_format_ext(enum audio_file_format fmt);
/* Parse a format name ("wav16", "flac24", "opus"...); STATUS_INVALID listing the names. */
enum status audio_file_format_parse(const char *name, enum audio_file_format *fmt);
/* 1 when the format is lossy (Vorbis, Opus, MP3). */
int audio_file_format_lossy(enum audio_file_format fmt);
/* 1 when this libsndfile build can write fmt with that rate and channel count. */
int audio_file_format_supported(enum audio_file_format fmt, int sample_rate_hz,
                                int n_channels);

/* Write af to path atomically: into "PATH.tmp-<pid>-<n>", fsync, then rename over path, so
 * readers see the old file or the whole new one; the temporary is removed on failure.
 * Integer formats are quantised here, not by libsndfile: q = round-half-even(x * 2^(b-1))
 * clipped to [-2^(b-1), 2^(b-1) - 1], so any clip read from a b-bit file writes back
 * bit-exact (libsndfile alone would scale by 2^(b-1) - 1). Lossy formats use the codec's
 * default quality. Fails with STATUS_NUMERIC on a NaN/Inf sample, STATUS_UNSUPPORTED on a
 * rate / channel count the format cannot store, STATUS_IO on a write error. A 0-frame af
 * writes a header-only file (FLAC and MP3 give a 0-byte file). */
enum status audio_file_write(const char *path, const struct audio_file *af,
                             enum audio_file_format fmt);

#endif
