/* scale.h: decibel and perceptual scales for spectrograms.
 *
 * Decibels as librosa.power_to_db with ref 1: 10 log10(max(P, amin)) (20 log10 for
 * magnitudes, librosa.amplitude_to_db), optionally floored at (max - top_db). A-weighting as
 * librosa.A_weighting (IEC 61672 constants), floored at min_db (-80 in librosa).
 *
 * scale_log10() is a vectorised polynomial log10 for positive normal floats (error below
 * 3e-7 (|log10 x| + 1), i.e. about 1e-6 dB), used for whole spectrograms; its naive twin
 * is libm's log10().
 */
#ifndef BASIN_DSP_SCALE_H
#define BASIN_DSP_SCALE_H

/* y = log10(x) elementwise, x positive and normal (>= FLT_MIN). y may equal x. */
void scale_log10(long n, float *y, const float *x);

/* y = mult * log10(max(x, amin)); mult 10 for power, 20 for magnitude; amin >= 1e-30.
 * Returns the largest y. y may equal x. */
float scale_db(long n, float *y, const float *x, float amin, float mult);

/* y = max(y, floor_db) elementwise: with floor_db = max(y) - top_db this is librosa's top_db. */
void scale_floor(long n, float *y, float floor_db);

/* A-weighting in dB at frequency hz, floored at min_db: ref librosa.A_weighting. 0 Hz gives
 * min_db. */
double scale_a_weighting(double hz, double min_db);

#endif
