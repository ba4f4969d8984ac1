#!/usr/bin/python3
"""The PyTorch side of `bench predict`: one 10-second clip, file to probabilities.

  predict_ref.py --model cpresnet|sepnet --threads N

What a PyTorch user runs for one clip: torchaudio.load, the preset's log-mel with torchaudio
(float32: power spectrogram -> Slaney mel -> 10 log10, the sizes of basin's cpjku / sp4asc
presets), the model (../shared/peers/basin_ref.py, eval mode, no_grad) and the softmax. The
model is built once, as basin's bench builds it before timing. Prints one JSON line: the first
call's time and the median of the next nine, in ms, and the peak RSS.
"""
import argparse, json, math, os, resource, statistics, sys, tempfile, time, wave

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.environ.get("REF_DIR") or os.path.join(here, "..", "..", "..", "shared", "peers"))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torchaudio  # noqa: E402
import basin_ref as ref  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="cpresnet", choices=["cpresnet", "sepnet"])
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    preset = "cpjku" if a.model == "cpresnet" else "sp4asc"
    p = ref.PRESETS[preset]
    if a.model == "cpresnet":
        m = ref.CpResNet(width=32, rho=5, damping=0.0, groups=1, roll=0, in_ch=1, classes=10)
    else:
        m = ref.SepNet(mels=p["n_mels"], classes=10)
    m.eval()
    mel = torchaudio.transforms.MelSpectrogram(
        sample_rate=p["sr"], n_fft=p["n_fft"], hop_length=p["hop"], n_mels=p["n_mels"],
        f_min=p["fmin"], f_max=p["fmax"], norm="slaney", mel_scale="slaney", power=2.0)

    rng = np.random.default_rng(9)
    n = 10 * p["sr"]
    t = np.arange(n) / p["sr"]
    x = 0.3 * rng.standard_normal(n) * 0.1 + 0.1 * np.sin(2 * math.pi * 440 * t)
    pcm = np.clip(np.round(x * 32768), -32768, 32767).astype("<i2")
    fd, path = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    with wave.open(path, "wb") as w:
        w.setnchannels(1); w.setsampwidth(2); w.setframerate(p["sr"]); w.writeframes(pcm.tobytes())

    def predict():
        wav, sr = torchaudio.load(path)
        with torch.no_grad():
            feats = 10 * torch.log10(torch.clamp(mel(wav.mean(0)), min=1e-10))
            return torch.softmax(m(feats[None, None]), dim=1)

    t0 = time.perf_counter(); predict(); first = time.perf_counter() - t0
    ts = []
    for _ in range(9):
        t0 = time.perf_counter(); predict(); ts.append(time.perf_counter() - t0)
    os.unlink(path)
    print(json.dumps(dict(what="predict", model=a.model, threads=a.threads, torch=torch.__version__,
                          first_ms=first * 1e3, ms=statistics.median(ts) * 1e3,
                          peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))


if __name__ == "__main__":
    main()
