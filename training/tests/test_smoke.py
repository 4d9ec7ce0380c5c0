#!/usr/bin/python3
"""Smoke test of the training toolchain: tiny dataset -> train.py (both archs, a few steps, progressive
resize, resume, --init) -> export.py (parity <= 1e-4, card fields) -> onnx_import.py (the export read back,
fine-tuned from) -> eval_checkpoints.py -> make_tiny_onnx.py; render_fakes.py
(train-ae, train-refiner, synth, deterministic); codec_pairs.py (pairs kept, deterministic, errors);
plus unit checks of the ViT export form, the full-resolution stems, position-embedding resizing and ROC-AUC. Runs in well under a minute on 2 cores.

  /usr/bin/python3 training/tests/test_smoke.py
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

TRAINING = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TRAINING)

import common  # noqa: E402  (first: sets the OpenMP wait policy before torch loads)
import cv2  # noqa: E402
import dataset  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import eval_checkpoints  # noqa: E402
import export  # noqa: E402
import make_tiny_onnx  # noqa: E402
import models  # noqa: E402
import onnx_import  # noqa: E402
import pretrain  # noqa: E402
import train  # noqa: E402

PY = "/usr/bin/python3"
TOL = 1e-4


def make_seed_dataset(root, per_class=16, size=64, seed=0):
    """Seed layout with a learnable cue: fakes carry a high-frequency noise patch on a smooth face-like
    blob; reals are the smooth blob alone."""
    rng = np.random.default_rng(seed)
    for split in ("train", "val"):
        for label in ("real", "fake"):
            d = os.path.join(root, split, label)
            os.makedirs(d)
            for i in range(per_class):
                base = rng.integers(40, 200, 3)
                img = np.tile(base.astype(np.uint8), (size, size, 1))
                cv2.ellipse(img, (size // 2, size // 2), (size // 3, size // 2 - 4), 0, 0, 360,
                            [int(v) for v in rng.integers(120, 240, 3)], -1)
                img = cv2.GaussianBlur(img, (0, 0), 2)
                if label == "fake":
                    y, x = rng.integers(8, size // 2, 2)
                    patch = img[y:y + 24, x:x + 24].astype(np.int16) + rng.integers(-50, 50, (24, 24, 3))
                    img[y:y + 24, x:x + 24] = np.clip(patch, 0, 255).astype(np.uint8)
                ext = ".png" if i % 2 else ".jpg"
                cv2.imwrite(os.path.join(d, f"{i:03d}{ext}"), img)


def run(args):
    r = subprocess.run([PY] + args, cwd=TRAINING, capture_output=True, text=True, timeout=240)
    if r.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    return r.stdout


def read_jsonl(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class Smoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        common.set_threads(2)
        cls.tmp = tempfile.mkdtemp(prefix="dfm_training_smoke_")
        cls.data = os.path.join(cls.tmp, "data")
        make_seed_dataset(cls.data)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def check_card(self, card_path, arch, max_batch=None):
        with open(card_path) as f:
            card = json.load(f)
        self.assertEqual(card["schema"], "dfmon.model_card/1")
        self.assertEqual(card["architecture"], arch)
        self.assertEqual(card["file"], os.path.splitext(os.path.basename(card_path))[0] + ".onnx")
        inp = card["input"]
        self.assertEqual((inp["width"], inp["height"], inp["channels"]), (224, 224, 3))
        self.assertEqual((inp["color"], inp["layout"]), ("RGB", "NCHW"))
        self.assertAlmostEqual(inp["scale"], 1 / 255)
        self.assertEqual(inp["mean"], [0.485, 0.456, 0.406])
        self.assertEqual(inp["std"], [0.229, 0.224, 0.225])
        if max_batch is not None:
            self.assertEqual(inp["max_batch"], max_batch)
        self.assertEqual(card["output"], {"type": "logits", "labels": ["real", "fake"], "fake_index": 1})
        self.assertLessEqual(card["parity"]["max_abs_diff"], TOL)
        self.assertGreaterEqual(card["parity"]["n_inputs"], 8)
        for key in ("data", "recipe", "epochs", "images_seen", "wall_min", "seed"):
            self.assertIn(key, card["training"])
        for key in ("n", "accuracy", "auc"):
            self.assertIn(key, card["metrics"]["val"])
        onnx_path = os.path.join(os.path.dirname(card_path), card["file"])
        self.assertEqual(card["onnx_sha256"], export.sha256_file(onnx_path))
        self.assertEqual(len(card["date"]), 10)
        return card

    def train_and_export(self, arch, size, final_size, expect_max_batch):
        run_dir = os.path.join(self.tmp, "run_" + arch)
        base = ["train.py", "--data", self.data, "--arch", arch, "--out", run_dir, "--batch", "8",
                "--size", str(size), "--final-size", str(final_size), "--epochs", "1", "--epoch-steps", "2",
                "--threads", "2", "--seed", "3"]
        out = run(base + ["--final-epochs", "1"])
        self.assertIn("img/s", out)
        rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
        self.assertEqual([r["size"] for r in rows], [size, final_size])  # progressive resize happened
        self.assertEqual(rows[-1]["val_n"], 32)
        # Resume: one more epoch at the final size continues from last.pt (in-process: saves a start-up).
        self.assertEqual(train.main(base[1:] + ["--final-epochs", "2", "--resume", "--log-every", "0"]), 0)
        rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
        self.assertEqual(len(rows), 3)
        self.assertEqual(rows[-1]["images_seen"], 3 * 2 * 8)
        ck = torch.load(os.path.join(run_dir, "best.pt"), map_location="cpu")
        self.assertIn("val", ck["metrics"])

        onnx_path = os.path.join(self.tmp, "models", arch + ".onnx")
        run(["export.py", "--checkpoint", os.path.join(run_dir, "best.pt"), "--out", onnx_path,
             "--parity-images", os.path.join(self.data, "val"), "--parity-count", "8"])
        card = self.check_card(os.path.splitext(onnx_path)[0] + ".json", arch, expect_max_batch)
        self.assertEqual(card["metrics"]["val"]["n"], 32)
        self.assertGreater(card["training"]["images_seen"], 0)

        # Checkpoint check on per-video crop folders: two fake/real pairs, one unpaired real.
        crops = os.path.join(self.tmp, "crops_" + arch)
        for video in ("a_fake", "a_real", "B_FAKE", "B_REAL", "c_orig"):
            cls = "fake" if "fake" in video.lower() else "real"
            os.makedirs(os.path.join(crops, video))
            for f in sorted(os.listdir(os.path.join(self.data, "val", cls)))[:3]:
                shutil.copy(os.path.join(self.data, "val", cls, f), os.path.join(crops, video, f))
        # The detail probe reads 224 px crops with dfmon's landmarks.jsonl: a ring of 68 points.
        ring = [v for a in np.linspace(0, 2 * np.pi, 68, endpoint=False) for v in (112 + 60 * np.cos(a), 112 + 70 * np.sin(a))]
        with open(os.path.join(crops, "c_orig", "landmarks.jsonl"), "w") as lj:
            for f in sorted(f for f in os.listdir(os.path.join(crops, "c_orig")) if f != "landmarks.jsonl"):
                path = os.path.join(crops, "c_orig", f)
                cv2.imwrite(path, cv2.resize(cv2.imread(path), (224, 224)))
                lj.write(json.dumps({"file": f, "landmarks": ring}) + "\n")
        got = os.path.join(self.tmp, "eval_" + arch + ".json")
        self.assertEqual(eval_checkpoints.main([os.path.join(run_dir, "best.pt"), "--crops", crops, "--json", got,
                                                "--detail-probe"]), 0)
        r = json.load(open(got))[os.path.join(run_dir, "best.pt")]
        self.assertEqual((r["videos"], r["fake_videos"], r["faces"], r["pairs"]), (5, 2, 15, 2))
        self.assertIsNone(r["pair_rank_corr"])  # two pairs: too few to rank
        self.assertEqual(eval_checkpoints.rank_corr([0.1, 0.5, 0.9], [0.2, 0.3, 0.4]), 1.0)
        self.assertAlmostEqual(eval_checkpoints.rank_corr([0.9, 0.5, 0.1], [0.2, 0.3, 0.4]), -1.0)
        self.assertTrue(0.0 <= r["video_auc"] <= 1.0 and 0.0 <= r["frame_auc"] <= 1.0)
        self.assertEqual(sorted(r["detail_probe"]), ["blurred", "sharpened", "tinted"])
        for before, after, rose in r["detail_probe"].values():
            self.assertTrue(0.0 <= before <= 1.0 and 0.0 <= after <= 1.0 and 0.0 <= rose <= 1.0)
        lo, hi = r["video_auc_95"]
        self.assertTrue(0.0 <= lo <= r["video_auc"] <= hi <= 1.0)
        # --compare against the same run: zero difference in every resample.
        best = os.path.join(run_dir, "best.pt")
        again = os.path.join(self.tmp, "again_" + arch + ".json")
        self.assertEqual(eval_checkpoints.main([best, "--crops", crops, "--json", again, "--compare", got]), 0)
        c = json.load(open(again))[best]["compare"][best]
        self.assertEqual((c["diff"], c["diff_95"], c["share_not_above"]), (0.0, [0.0, 0.0], 1.0))
        other = os.path.join(self.tmp, "other_" + arch + ".json")
        with open(other, "w") as f:
            ref = json.load(open(got))
            del ref[best]["per_video"]["c_orig"]
            json.dump(ref, f)
        with self.assertRaisesRegex(SystemExit, "scored on other videos"):
            eval_checkpoints.main([best, "--crops", crops, "--compare", other])
        with self.assertRaisesRegex(SystemExit, "not a JSON file written by --json"):
            eval_checkpoints.main([best, "--crops", crops, "--compare", os.path.join(crops, "a_fake")])

        # The export read back into PyTorch (what fine-tuning the bundled models starts from): the same
        # function as the checkpoint; with calibration crops a ResNet's BatchNorm in training mode, on
        # exactly those crops, still computes it (batch statistics = the calibration statistics).
        calib = onnx_import.calibration_batch(self.data, 224, n=12)
        imported = onnx_import.checkpoint_from_onnx(onnx_path, calib=calib)
        self.assertEqual((imported["arch"], imported["img_size"]), (arch, 224))
        self.assertLessEqual(imported["import_parity"], TOL)
        _, reference, _ = export.load_checkpoint_model(os.path.join(run_dir, "best.pt"))
        if isinstance(reference, models.VisionTransformer):
            reference.set_img_size(224)
        back = models.load_weights(models.build_model(arch, img_size=224), imported["model"]).eval()
        x = torch.randn(3, 3, 224, 224)
        with torch.no_grad():
            self.assertLess(float((back(x) - reference(x)).abs().max()), TOL)
            if arch == "resnet18":  # (a ViT in training mode drops paths at random)
                self.assertLess(float((back.train()(calib) - back.eval()(calib)).abs().max()), 1e-3)
        _, again, _ = export.load_checkpoint_model(onnx_path)  # export.py --checkpoint X.onnx reads it too
        with torch.no_grad():
            self.assertLess(float((again(x) - reference(x)).abs().max()), TOL)

        # Fine-tuning start (--init) at another size; in-process to save an interpreter start.
        ft_dir = run_dir + "_ft"
        self.assertEqual(train.main(["--data", self.data, "--arch", arch, "--out", ft_dir, "--batch", "8",
                                     "--size", "64", "--epochs", "1", "--epoch-steps", "1", "--log-every", "0",
                                     "--init", os.path.join(run_dir, "best.pt")]), 0)
        self.assertIn("fine-tuned from", torch.load(os.path.join(ft_dir, "last.pt"))["training"]["recipe"])
        # ... and from the exported file, as a clone of the repository fine-tunes models/*.onnx.
        self.assertEqual(train.main(["--data", self.data, "--arch", arch, "--out", ft_dir + "_onnx", "--batch", "8",
                                     "--size", "64", "--epochs", "1", "--epoch-steps", "1", "--log-every", "0",
                                     "--init", onnx_path]), 0)
        self.assertIn("fine-tuned from " + onnx_path,
                      torch.load(os.path.join(ft_dir + "_onnx", "last.pt"))["training"]["recipe"])

    def test_resnet18_train_export(self):
        self.train_and_export("resnet18", 32, 64, expect_max_batch=0)

    def test_vit_tiny_train_export(self):
        # 32 px = 2x2 patch grid, 48 px = 3x3: exercises the pos-embed interpolation at the switch and
        # again (to 14x14) at export.
        self.train_and_export("vit_tiny", 32, 48, expect_max_batch=0)

    def test_vit_export_form_agrees(self):
        torch.manual_seed(0)
        m = models.vit_tiny(img_size=112).eval()
        with torch.no_grad():  # non-trivial LayerNorm affine so the folding is really tested
            for mod in m.modules():
                if isinstance(mod, torch.nn.LayerNorm):
                    mod.weight.uniform_(0.5, 1.5)
                    mod.bias.normal_(0, 0.1)
        x = torch.randn(3, 3, 224, 224)
        ref = models.to_export_form(m, img_size=224)  # to_export_form must not modify m
        self.assertEqual(m.img_size, 112)
        m.set_img_size(224)
        with torch.no_grad():
            want = m(x)
            for batch_agnostic in (True, False):
                e = models.to_export_form(m, batch_agnostic=batch_agnostic)
                got = torch.cat([e(x[i:i + 1]) for i in range(len(x))])
                self.assertLessEqual(float((got - want).abs().max()), 1e-5)
            self.assertLessEqual(float((ref(x) - want).abs().max()), 1e-5)

    def test_fullres_from_pooled_is_exact(self):
        # A 112 px model after a 2x2 average pool and its full-resolution form must agree on any input.
        torch.manual_seed(1)
        x = torch.randn(2, 3, 224, 224)
        for arch in ("resnet18", "vit_tiny"):
            pooled = models.build_model(arch, img_size=112).eval()
            full = models.build_model(arch + "_fullres", img_size=224).eval()
            models.load_weights(full, models.fullres_from_pooled(arch + "_fullres", pooled.state_dict(), 112))
            with torch.no_grad():
                want = pooled(torch.nn.functional.avg_pool2d(x, 2))
                self.assertLessEqual(float((full(x) - want).abs().max()), 1e-4 * float(want.abs().max()) + 1e-5)
            with self.assertRaises(ValueError):  # only a 112 px checkpoint maps onto the 224 px stem
                models.fullres_from_pooled(arch + "_fullres", pooled.state_dict(), 64)

    def test_noise_residual_arch(self):
        # The fixed front passes fine detail and drops smooth shading; the model exports with parity.
        res = models.NoiseResidual()
        yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        ramp = (0.02 * xx + 0.01 * yy).expand(1, 3, 64, 64)  # a linear gradient: no detail at all
        noise = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 0.1
        with torch.no_grad():
            self.assertLess(float(res(ramp)[..., 4:-4, 4:-4].abs().max()), 1e-5)
            self.assertGreater(float(res(noise)[..., 4:-4, 4:-4].abs().mean()), 0.02)
            self.assertEqual(tuple(res(noise).shape), (1, 9, 64, 64))
        x = torch.randn(2, 3, 224, 224, generator=torch.Generator().manual_seed(1))
        for arch in ("resnet18_srm", "resnet18_srm_cs", "vit_tiny_srm"):
            model = models.build_model(arch).eval()
            self.assertEqual(dict(model.named_parameters()).get("residual.weight"), None)  # fixed, not trained
            for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
                bn.running_mean.uniform_(-0.5, 0.5)  # trained statistics, so that folding them is tested
                bn.running_var.uniform_(0.5, 2.0)
            with torch.no_grad():  # trained-looking biases and norms (the exporter shares equal constants)
                for q in model.parameters():
                    if q.ndim == 1:
                        q.add_(torch.empty_like(q).uniform_(-0.1, 0.1))
            with torch.no_grad():  # every stem keeps the 112 px networks' grid
                stem = model.stem if arch == "vit_tiny_srm" else model.net.conv1
                want = (2, 128, 28, 28) if arch == "vit_tiny_srm" else (2, 64, 56, 56)
                self.assertEqual(tuple(stem(model.residual(x)).shape), want, arch)
            path = os.path.join(self.tmp, arch + ".onnx")
            export.export_onnx(models.export_ready(arch, model), path)
            parity = export.check_parity(model, path, [x[i].numpy() for i in range(len(x))], tol=TOL)
            self.assertTrue(parity["ok"], (arch, parity))
            self.assertEqual(parity["max_batch"], 0, arch)  # any batch size, as the product feeds them
            # Read back for fine-tuning (train.py --init FILE): the same function, checked against cv2.dnn.
            ck = onnx_import.checkpoint_from_onnx(path, arch=arch, calib=x)
            back = models.load_weights(models.build_model(arch), ck["model"]).eval()
            with torch.no_grad():
                self.assertLess(float((torch.softmax(back(x), 1) - torch.softmax(model(x), 1)).abs().max()), TOL)

    def test_resize_pos_embed(self):
        pos = torch.randn(1, 1 + 7 * 7, 192)
        self.assertTrue(torch.equal(models.resize_pos_embed(pos, 7), pos))
        big = models.resize_pos_embed(pos, 14)
        self.assertEqual(tuple(big.shape), (1, 1 + 14 * 14, 192))
        self.assertTrue(torch.equal(big[:, 0], pos[:, 0]))  # class-token entry untouched
        # A constant grid stays constant under bicubic resampling.
        flat = torch.ones(1, 1 + 4, 8)
        self.assertTrue(torch.allclose(models.resize_pos_embed(flat, 3), torch.ones(1, 10, 8), atol=1e-6))

    def test_detail_fake_changes_only_the_face_region(self):
        ring = [v for a in np.linspace(0, 2 * np.pi, 68, endpoint=False) for v in (112 + 40 * np.cos(a), 112 + 50 * np.sin(a))]
        rng = np.random.default_rng(5)
        img = rng.integers(0, 256, (224, 224, 3)).astype(np.uint8)  # texture everywhere, so every op shows
        changed = 0
        for seed in range(20):
            a = dataset.detail_fake(img, ring, np.random.default_rng(seed))
            self.assertTrue(np.array_equal(a, dataset.detail_fake(img, ring, np.random.default_rng(seed))))
            self.assertEqual((a.shape, a.dtype), (img.shape, img.dtype))
            diff = np.abs(a.astype(int) - img).max(axis=2)
            self.assertEqual(int(diff[:20].max()), 0)  # far from the face: untouched
            self.assertEqual(int(diff[:, :20].max()), 0)
            changed += int(diff[112, 112] > 0 or diff[140, 112] > 0 or diff[95, 112] > 0)
        self.assertGreaterEqual(changed, 18)  # the region (whole, lower, eyes) holds the change

    def make_paired_dataset(self, name, landmarks_path):
        """Paired layout: 8 textured real crops per split, each with one synth fake (its negative);
        their landmarks (a ring round the centre) written to landmarks_path."""
        root = os.path.join(self.tmp, name)
        ring = [v for a in np.linspace(0, 2 * np.pi, 68, endpoint=False) for v in (32 + 12 * np.cos(a), 32 + 15 * np.sin(a))]
        with open(landmarks_path, "w") as lj:
            for split in ("train", "val"):
                for label in ("real", "fake"):
                    os.makedirs(os.path.join(root, split, label))
                rng = np.random.default_rng(len(split))
                for i in range(8):  # textured, so that every detail change shows after rounding
                    stem, img = f"{i:03d}", rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
                    cv2.imwrite(os.path.join(root, split, "real", stem + ".png"), img)
                    cv2.imwrite(os.path.join(root, split, "fake", stem + "_sbi0.png"), 255 - img)
                    lj.write(json.dumps({"file": f"{split}/real/{stem}.png", "landmarks": ring}) + "\n")
        return root

    def test_manipulation_targets(self):
        x = torch.randn(4, 3, 32, 32)
        x[1], x[3] = x[0], x[2]
        x[1, :, :16, :16] += 1.0  # fake 1: top-left quarter changed by 1.0
        x[3, :, 16:, :] += 0.05  # fake 2: bottom half changed by half of tau
        t = train.manipulation_targets(x, (2, 2), tau=0.1)
        self.assertEqual(tuple(t.shape), (4, 1, 2, 2))
        self.assertEqual(float(t[0::2].abs().max()), 0.0)  # reals: nothing manipulated
        self.assertEqual(t[1, 0].tolist(), [[1.0, 0.0], [0.0, 0.0]])
        self.assertTrue(torch.allclose(t[3, 0], torch.tensor([[0.0, 0.0], [0.5, 0.5]]), atol=1e-5))

    def test_paired_training_with_mask_loss(self):
        root = self.make_paired_dataset("paired_mask", os.path.join(self.tmp, "lm_mask.jsonl"))
        run_dir = os.path.join(self.tmp, "run_mask")
        base = ["--data", root, "--arch", "resnet18_srm", "--out", run_dir, "--batch", "8", "--size", "224",
                "--epoch-steps", "1", "--log-every", "1", "--paired", "--mask-loss", "1", "--augment", "colour"]
        args = base + ["--epochs", "1"]
        self.assertEqual(train.main(args), 0)
        ck = torch.load(os.path.join(run_dir, "last.pt"))
        self.assertEqual(tuple(ck["mask_head"]["weight"].shape), (1, 256, 1, 1))
        self.assertIn("auxiliary manipulation-map loss (layer3, weight 1", ck["training"]["recipe"])
        # The head lives beside the model: its state dict (what export.py reads) is the plain arch's.
        self.assertEqual(set(ck["model"]), set(models.build_model("resnet18_srm").state_dict()))
        self.assertEqual(train.main(base + ["--epochs", "2", "--resume"]), 0)  # resumes with its head
        self.assertEqual(len(read_jsonl(os.path.join(run_dir, "metrics.jsonl"))), 2)
        for bad in (["--arch", "vit_tiny"], ["--mask-tau", "0"]):
            with self.assertRaises(SystemExit):
                train.parse_args(args + bad)
        with self.assertRaises(SystemExit):  # the target is the difference to the pair's real crop
            train.parse_args([a for a in args if a != "--paired"])

    def test_vit_srm_mask_loss_and_teacher(self):
        # vit_tiny_srm learns the manipulation map on its middle block's tokens, and a teacher's softmax.
        root = self.make_paired_dataset("paired_vit", os.path.join(self.tmp, "lm_vit.jsonl"))
        teacher_dir = os.path.join(self.tmp, "run_teacher")
        common = ["--data", root, "--batch", "8", "--size", "224", "--epochs", "1", "--epoch-steps", "1",
                  "--log-every", "0", "--paired", "--augment", "colour"]
        self.assertEqual(train.main(common + ["--arch", "resnet18_srm", "--out", teacher_dir]), 0)
        teacher = os.path.join(teacher_dir, "last.pt")
        run_dir = os.path.join(self.tmp, "run_vit_student")
        args = common + ["--arch", "vit_tiny_srm", "--out", run_dir, "--mask-loss", "1", "--teacher", teacher,
                         "--distill", "0.7"]
        self.assertEqual(train.main(args), 0)
        ck = torch.load(os.path.join(run_dir, "last.pt"))
        self.assertEqual(tuple(ck["mask_head"]["weight"].shape), (1, 192, 1, 1))
        self.assertIn("middle block's tokens", ck["training"]["recipe"])
        self.assertIn("distilled from " + teacher + " (soft-target weight 0.7)", ck["training"]["recipe"])
        self.assertEqual(set(ck["model"]), set(models.build_model("vit_tiny_srm").state_dict()))
        # The soft-target loss is the cross-entropy with the teacher's probabilities.
        logits = torch.tensor([[2.0, -1.0], [0.0, 0.5]])
        probs = torch.tensor([[0.9, 0.1], [0.3, 0.7]])
        want = -(probs * torch.log_softmax(logits, 1)).sum(1).mean()
        self.assertAlmostEqual(float(train.soft_cross_entropy(logits, probs)), float(want), places=6)
        self.assertAlmostEqual(float(train.soft_cross_entropy(logits, torch.eye(2))),
                               float(torch.nn.functional.cross_entropy(logits, torch.arange(2))), places=6)
        with self.assertRaisesRegex(ValueError, "teacher reads 224 px, the student trains at 112 px"):
            train.load_teacher(teacher, 112)
        with self.assertRaises(SystemExit):
            train.main([a for a in args if a != teacher] + ["--teacher", os.path.join(self.tmp, "missing.pt")])
        for bad in (["--distill", "1.5"], ["--final-epochs", "1", "--final-size", "112"]):
            with self.assertRaises(SystemExit):
                train.parse_args(args + bad)

    def test_paired_training_with_detail_fakes(self):
        root = self.make_paired_dataset("paired", os.path.join(self.tmp, "lm.jsonl"))
        args = ["--data", root, "--arch", "resnet18", "--out", os.path.join(self.tmp, "run_detail"), "--batch", "8",
                "--size", "32", "--epochs", "1", "--epoch-steps", "1", "--log-every", "0", "--paired",
                "--detail-fakes", "1", "--augment", "light"]
        with self.assertRaises(FileNotFoundError):  # no landmarks.jsonl yet
            train.main(args)
        os.replace(os.path.join(self.tmp, "lm.jsonl"), os.path.join(root, "landmarks.jsonl"))
        ds = dataset.PairedCrops(root, "train", 32, "colour", detail_fakes=1.0)
        x, y = ds[0]
        self.assertEqual(y.tolist(), [0, 1])
        # The fake is the real crop changed inside the face only (not the synth fake, its negative).
        self.assertGreater(float((x[0] - x[1]).abs().max()), 0.0)
        self.assertTrue(torch.equal(x[0, :, :3, :3], x[1, :, :3, :3]))
        self.assertEqual(train.main(args), 0)
        recipe = torch.load(os.path.join(self.tmp, "run_detail", "last.pt"))["training"]["recipe"]
        self.assertIn("1 of the fakes detail-only", recipe)
        self.assertIn("aug flip/colour/JPEG q75-95", recipe)
        with self.assertRaises(SystemExit):  # detail fakes are made from a pair's real crop
            train.parse_args(args[:-5] + ["--detail-fakes", "0.5"])
        # One kind of change at a time: each changes the face and only the face, and differently.
        img = cv2.imread(os.path.join(root, "val", "real", "000.png"))
        ring = dataset.load_landmarks(root)["000.png"]
        made = {k: dataset.detail_fake(img, ring, np.random.default_rng(0), k) for k in dataset.DETAIL_KINDS}
        for k, fake in made.items():
            self.assertTrue(np.array_equal(fake[:8], img[:8]), k)
            self.assertFalse(np.array_equal(fake, img), k)
        self.assertEqual(len({m.tobytes() for m in made.values()}), len(dataset.DETAIL_KINDS))
        # eval_checkpoints --detail-fakes: each kind's AUC of the val reals against their own detail fakes.
        crops = os.path.join(self.tmp, "crops_detail")
        for video in ("a_fake", "a_real"):
            os.makedirs(os.path.join(crops, video))
            shutil.copy(os.path.join(root, "val", "real", "001.png"), os.path.join(crops, video, "f.png"))
        got = os.path.join(self.tmp, "eval_detail.json")
        ck = os.path.join(self.tmp, "run_detail", "last.pt")
        self.assertEqual(eval_checkpoints.main([ck, "--crops", crops, "--json", got, "--detail-fakes", root,
                                                "--detail-fakes-count", "5"]), 0)
        aucs = json.load(open(got))[ck]["detail_fakes"]
        self.assertEqual(list(aucs), list(dataset.DETAIL_KINDS))
        self.assertTrue(all(0.0 <= a <= 1.0 for a in aucs.values()))
        with self.assertRaisesRegex(SystemExit, "landmarks.jsonl"):
            eval_checkpoints.main([ck, "--crops", crops, "--detail-fakes", crops])

    def test_landmark_view_moves_points_with_pixels(self):
        # Mirroring twice is the identity, and each point marks the same pixel before and after a view.
        self.assertTrue(np.array_equal(pretrain.MIRROR[pretrain.MIRROR], np.arange(68)))
        self.assertEqual(sorted(pretrain.MIRROR.tolist()), list(range(68)))
        # Central points: a view never moves them out of the crop (where the border reflection would
        # bring in a mirrored copy of the dot).
        pts = np.array([[78 + i, 80 + (i * 37) % 64] for i in range(68)], np.float32)
        mirrored = 0
        for seed in range(6):
            for k in (0, 36, 48):  # a jaw point, an eye corner, a lip corner
                img = np.zeros((224, 224, 3), np.uint8)
                cv2.circle(img, (int(pts[k, 0]), int(pts[k, 1])), 3, (255, 255, 255), -1)
                out, moved = pretrain.random_view(img, pts, np.random.default_rng(seed))
                ys, xs = np.nonzero(out[..., 0] > 128)
                centre = np.array([xs.mean(), ys.mean()])
                # The dot is where point k went, or (mirrored) where its mirror partner's index now points.
                near = np.linalg.norm(moved - centre, axis=1).argmin()
                self.assertLess(float(np.linalg.norm(moved[near] - centre)), 1.5)
                self.assertIn(near, (k, int(pretrain.MIRROR[k])))
                mirrored += int(near != k)
        self.assertGreater(mirrored, 0)

    def test_landmark_pretraining_then_fine_tune(self):
        root = os.path.join(self.tmp, "lm_data")
        ring = [v for a in np.linspace(0, 2 * np.pi, 68, endpoint=False) for v in (32 + 12 * np.cos(a), 32 + 15 * np.sin(a))]
        rng = np.random.default_rng(9)
        with open(os.path.join(root + "_lm.jsonl"), "w") as lj:
            for split in ("train", "val"):
                for label in ("real", "fake"):
                    os.makedirs(os.path.join(root, split, label))
                for i in range(8):
                    img = rng.integers(0, 256, (64, 64, 3)).astype(np.uint8)
                    cv2.imwrite(os.path.join(root, split, "real", f"{i:03d}.png"), img)
                    cv2.imwrite(os.path.join(root, split, "fake", f"{i:03d}_sbi0.png"), 255 - img)
                    lj.write(json.dumps({"file": f"{split}/real/{i:03d}.png", "landmarks": ring}) + "\n")
        run_dir = os.path.join(self.tmp, "run_lm")
        with self.assertRaises(FileNotFoundError):  # no landmarks.jsonl yet
            pretrain.main(["--data", root, "--out", run_dir, "--steps", "2"])
        os.replace(root + "_lm.jsonl", os.path.join(root, "landmarks.jsonl"))
        self.assertEqual(pretrain.main(["--data", root, "--out", run_dir, "--steps", "4", "--batch", "4",
                                        "--size", "32", "--eval-every", "2", "--threads", "2"]), 0)
        rows = read_jsonl(os.path.join(run_dir, "metrics.jsonl"))
        self.assertEqual([r["step"] for r in rows], [2, 4])
        self.assertTrue(all(np.isfinite(r["val_nme"]) for r in rows))
        ck = torch.load(os.path.join(run_dir, "pretrained.pt"))
        self.assertEqual((ck["arch"], ck["img_size"], tuple(ck["model"]["fc.weight"].shape)), ("resnet18", 32, (2, 512)))
        self.assertEqual(train.main(["--data", root, "--arch", "resnet18", "--out", run_dir + "_ft", "--batch", "8",
                                     "--size", "32", "--epochs", "1", "--epoch-steps", "1", "--log-every", "0",
                                     "--paired", "--init", os.path.join(run_dir, "pretrained.pt")]), 0)

    def test_rendered_fakes(self):
        # Face-like crops with landmarks: train the generator a few steps, render, pair, train on the pairs.
        root, out = os.path.join(self.tmp, "render_src"), os.path.join(self.tmp, "rendered")
        ring = [v for a in np.linspace(0, 2 * np.pi, 68, endpoint=False) for v in (112 + 40 * np.cos(a), 140 + 45 * np.sin(a))]
        rng = np.random.default_rng(3)
        with open(os.path.join(self.tmp, "render_lm.jsonl"), "w") as lj:
            for split in ("train", "val"):
                os.makedirs(os.path.join(root, split, "real"))
                for i in range(6):
                    img = rng.integers(0, 256, (224, 224, 3)).astype(np.uint8)
                    cv2.imwrite(os.path.join(root, split, "real", f"{i:03d}.png"), img)
                    lj.write(json.dumps({"file": f"{split}/real/{i:03d}.png", "landmarks": ring}) + "\n")
        os.replace(os.path.join(self.tmp, "render_lm.jsonl"), os.path.join(root, "landmarks.jsonl"))
        ae = os.path.join(self.tmp, "ae.pt")
        run(["render_fakes.py", "train-ae", "--data", root, "--out", ae, "--steps", "3", "--batch", "4", "--log-every", "1"])
        def real_of(fake_name):
            return cv2.imread(os.path.join(root, "train", "real", fake_name.rsplit("_", 1)[0] + ".png"))

        def as_jpeg(img):  # what the fake's untouched pixels are after synth writes it (JPEG q95)
            return cv2.imdecode(cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 95])[1], cv2.IMREAD_COLOR)

        fakes = []
        for rep in range(2):  # deterministic: the same bytes twice
            run(["render_fakes.py", "synth", "--data", root, "--ae", ae, "--out", out + str(rep), "--per-real", "2"])
            fakes.append(sorted(os.listdir(os.path.join(out + str(rep), "train", "fake"))))
            self.assertEqual(len(fakes[-1]), 12)
        for f in fakes[0]:
            a = cv2.imread(os.path.join(out + "0", "train", "fake", f))
            self.assertTrue(np.array_equal(a, cv2.imread(os.path.join(out + "1", "train", "fake", f))), f)
            real = real_of(f)
            self.assertTrue(np.array_equal(a[:32], as_jpeg(real)[:32]), f)  # far from the face: untouched
            diff = np.abs(a.astype(int) - real).max(axis=2)
            self.assertGreater(float(diff[120:160, 92:132].mean()), 20, f)  # the face is the generator's
        # With the crop's own fine detail added to the render: other fakes, still untouched outside the face.
        run(["render_fakes.py", "synth", "--data", root, "--ae", ae, "--out", out + "dt", "--detail-transfer", "1"])
        for f in os.listdir(os.path.join(out + "dt", "train", "fake")):
            a = cv2.imread(os.path.join(out + "dt", "train", "fake", f))
            self.assertFalse(np.array_equal(a, cv2.imread(os.path.join(out + "0", "train", "fake", f))), f)
            self.assertTrue(np.array_equal(a[:32], as_jpeg(real_of(f))[:32]), f)
        with open(os.path.join(out + "dt", "render.json")) as rj:
            self.assertEqual(json.load(rj)["detail_transfer"], 1.0)
        # Two generators, the second a 48 px swap model (two decoders) with transposed convs: each fake is
        # rendered by one of them, and render.json says which were used.
        ae2 = os.path.join(self.tmp, "ae2.pt")
        run(["render_fakes.py", "train-ae", "--data", root, "--out", ae2, "--steps", "4", "--batch", "2", "--res", "48",
             "--up", "deconv", "--decoders", "2", "--width", "8", "--code", "16"])
        run(["render_fakes.py", "synth", "--data", root, "--ae", ae, ae2, "--out", out + "two", "--per-real", "2"])
        two = sorted(os.listdir(os.path.join(out + "two", "train", "fake")))
        self.assertEqual(two, fakes[0])
        changed = 0
        for f in two:
            a = cv2.imread(os.path.join(out + "two", "train", "fake", f))
            self.assertTrue(np.array_equal(a[:32], as_jpeg(real_of(f))[:32]), f)
            changed += not np.array_equal(a, cv2.imread(os.path.join(out + "0", "train", "fake", f)))
        self.assertGreater(changed, 0)
        with open(os.path.join(out + "two", "render.json")) as rj:
            gens = json.load(rj)["generators"]
        self.assertEqual([g["config"]["res"] for g in gens], [64, 48])
        self.assertEqual(gens[1]["config"]["decoders"], 2)
        # One decoder per person (here every crop is its own person): every fake is someone else's face.
        ae3 = os.path.join(self.tmp, "ae3.pt")
        run(["render_fakes.py", "train-ae", "--data", root, "--out", ae3, "--steps", "6", "--batch", "2", "--res", "48",
             "--per-person", "1", "--width", "8", "--code", "16"])
        run(["render_fakes.py", "synth", "--data", root, "--ae", ae3, "--out", out + "pp"])
        with open(os.path.join(out + "pp", "render.json")) as rj:
            config = json.load(rj)["generators"][0]["config"]
        self.assertEqual((config["group_key"], config["decoders"], len(config["people"])), ("people", 6, 6))
        self.assertEqual(len(os.listdir(os.path.join(out + "pp", "val", "fake"))), 6)
        # A refiner (the generator's last stage, 64 -> 128 px) after the first generator: other fakes, same
        # names, still untouched outside the face; an autoencoder checkpoint is no refiner.
        sr = os.path.join(self.tmp, "sr.pt")
        run(["render_fakes.py", "train-refiner", "--data", root, "--out", sr, "--steps", "3", "--batch", "2",
             "--patch", "32", "--width", "8", "--blocks", "1"])
        run(["render_fakes.py", "synth", "--data", root, "--ae", ae, "--refiner", sr, "--out", out + "sr", "--per-real", "2"])
        refined = sorted(os.listdir(os.path.join(out + "sr", "train", "fake")))
        self.assertEqual(refined, fakes[0])
        for f in refined:
            a = cv2.imread(os.path.join(out + "sr", "train", "fake", f))
            self.assertFalse(np.array_equal(a, cv2.imread(os.path.join(out + "0", "train", "fake", f))), f)
            self.assertTrue(np.array_equal(a[:32], as_jpeg(real_of(f))[:32]), f)
        with open(os.path.join(out + "sr", "render.json")) as rj:
            self.assertEqual(json.load(rj)["refiner"]["config"], {"kind": "refiner", "width": 8, "blocks": 1, "res": 64})
        r = subprocess.run([PY, "render_fakes.py", "synth", "--data", root, "--ae", ae, "--refiner", ae, "--out", out + "x"],
                           cwd=TRAINING, capture_output=True, text=True, timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("not a checkpoint written by train-refiner", r.stderr)
        ds = dataset.PairedCrops(out + "0", "train", 32)
        self.assertEqual((len(ds), ds[0][1].tolist()), (6, [0, 1]))
        bad = os.path.join(root, "train", "real", "999.png")
        with open(bad, "w") as f:
            f.write("not an image")
        r = subprocess.run([PY, "render_fakes.py", "train-ae", "--data", root, "--out", ae, "--steps", "1"], cwd=TRAINING,
                           capture_output=True, text=True, timeout=120)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("999.png: cannot read as an image", r.stderr)

    def test_roc_auc(self):
        rng = np.random.default_rng(1)
        y = rng.integers(0, 2, 200)
        s = rng.integers(0, 10, 200) / 10.0  # many ties
        pos, neg = s[y == 1], s[y == 0]
        brute = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
            len(pos) * len(neg))
        self.assertAlmostEqual(common.roc_auc(y, s), brute, places=12)
        self.assertEqual(common.roc_auc([0, 0, 1, 1], [0.1, 0.2, 0.3, 0.4]), 1.0)
        self.assertIsNone(common.roc_auc([1, 1], [0.1, 0.2]))

    def test_bootstrap_auc(self):
        rng = np.random.default_rng(2)
        y = np.array([1] * 28 + [0] * 18)  # the labelled set's shape
        a = rng.random(46) + 0.3 * y
        b = rng.random(46)
        boot = common.bootstrap_auc(y, [a, b, a], n=500, seed=3)
        self.assertEqual(boot.shape, (500, 3))
        np.testing.assert_array_equal(boot[:, 0], boot[:, 2])  # same draws for every score set: paired
        # Each resample is the AUC of the drawn items: recount the first one from the same draws (all
        # positive draws come first, then the negative ones).
        r = np.random.default_rng(3)
        pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
        draws_pos = [pos[r.integers(0, pos.size, pos.size)] for _ in range(500)]
        N = neg[r.integers(0, neg.size, neg.size)]
        P = draws_pos[0]
        self.assertAlmostEqual(boot[0, 0], common.roc_auc(np.r_[np.ones(P.size), np.zeros(N.size)], np.r_[a[P], a[N]]),
                               places=12)
        lo, hi = common.interval(boot[:, 0])
        self.assertLess(lo, common.roc_auc(y, a))
        self.assertGreater(hi, common.roc_auc(y, a))
        self.assertGreater(hi - lo, 0.1)  # 46 items: a wide interval
        self.assertIsNone(common.bootstrap_auc([1, 1], [[0.1, 0.2]]))

    def test_augment_levels(self):
        # Same draws give the same crop; more degradation leaves less fine detail on average.
        img = np.random.default_rng(2).integers(0, 256, (96, 96, 3)).astype(np.uint8)

        def detail(level):
            outs = [dataset.augment(img, np.random.default_rng(k), level) for k in range(60)]
            return float(np.mean([np.abs(cv2.Laplacian(o, cv2.CV_32F)).mean() for o in outs]))

        for level in dataset.AUGMENT_LEVELS:
            a, b = (dataset.augment(img, np.random.default_rng(9), level) for _ in range(2))
            self.assertTrue(np.array_equal(a, b), level)
            self.assertEqual((a.shape, a.dtype), (img.shape, np.uint8))
        self.assertGreater(detail("light"), detail("full"))
        self.assertGreater(detail("full"), detail("heavy"))

    def test_codec_pairs(self):
        # Paired crops through H.264: same names (as .png), each pair at one size and QP, deterministic.
        src, out = os.path.join(self.tmp, "codec_src"), os.path.join(self.tmp, "codec")
        rng = np.random.default_rng(5)
        with open(os.path.join(self.tmp, "codec_lm.jsonl"), "w") as lj:
            for split in ("train", "val"):
                for label in ("real", "fake"):
                    os.makedirs(os.path.join(src, split, label))
                for i in range(5):
                    img = cv2.GaussianBlur(rng.integers(0, 256, (96, 96, 3)).astype(np.uint8), (0, 0), 1.5)
                    cv2.imwrite(os.path.join(src, split, "real", f"{i:03d}.jpg"), img)
                    for k in range(2):
                        cv2.imwrite(os.path.join(src, split, "fake", f"{i:03d}_s{k}.png"), 255 - img if k else img // 2)
                    lj.write(json.dumps({"file": f"{split}/real/{i:03d}.jpg", "landmarks": [1.0, 2.0]}) + "\n")
        os.replace(os.path.join(self.tmp, "codec_lm.jsonl"), os.path.join(src, "landmarks.jsonl"))
        for rep in ("a", "b"):
            run(["codec_pairs.py", "--data", src, "--out", out + rep, "--seed", "3", "--sides", "32", "80"])
        pairs = dataset.list_pairs(out + "a", "train")
        self.assertEqual([(os.path.basename(r), [os.path.basename(f) for f in fs]) for r, fs in pairs],
                         [(f"{i:03d}.png", [f"{i:03d}_s0.png", f"{i:03d}_s1.png"]) for i in range(5)])
        for r, fs in pairs:
            for path in [r] + fs:
                a, b = cv2.imread(path), cv2.imread(path.replace(out + "a", out + "b"))
                self.assertTrue(np.array_equal(a, b), path)
            orig = cv2.imread(os.path.join(src, "train", "real", os.path.basename(r)[:-4] + ".jpg"))
            err = float(np.abs(cv2.imread(r).astype(int) - orig).mean())
            self.assertTrue(0.5 < err < 40, (r, err))  # changed by the codec, still the same picture
        with open(os.path.join(out + "a", "codec.json")) as f:
            info = json.load(f)
        self.assertEqual((info["frames_encoded"], info["splits"]["val"]["pairs_encoded"]), (30, 5))
        with open(os.path.join(out + "a", "landmarks.jsonl")) as f:
            self.assertEqual(json.loads(f.readline())["file"], "train/real/000.png")
        import codec_pairs  # a pair's size and QP depend on the seed and its name only
        self.assertEqual(codec_pairs.draw(3, "train/000", (18, 34), (32, 80), 1.0),
                         codec_pairs.draw(3, "train/000", (18, 34), (32, 80), 1.0))
        # --fraction 0 links everything; a higher QP loses more.
        run(["codec_pairs.py", "--data", src, "--out", out + "0", "--fraction", "0"])
        self.assertEqual(sorted(os.listdir(os.path.join(out + "0", "val", "fake")))[:2], ["000_s0.png", "000_s1.png"])
        self.assertEqual(os.stat(os.path.join(out + "0", "val", "real", "000.jpg")).st_ino,
                         os.stat(os.path.join(src, "val", "real", "000.jpg")).st_ino)
        frame = cv2.imread(os.path.join(src, "val", "real", "000.jpg"))
        errs = [float(np.abs(codec_pairs.h264_roundtrip([frame], qp, "medium")[0][0].astype(int) - frame).mean())
                for qp in (10, 40)]
        self.assertLess(errs[0], errs[1])
        r = subprocess.run([PY, "codec_pairs.py", "--data", src, "--out", out + "a"], cwd=TRAINING,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("already exists", r.stderr)
        os.remove(os.path.join(src, "train", "real", "001.jpg"))
        with open(os.path.join(src, "train", "real", "001.jpg"), "w") as f:
            f.write("not an image")
        r = subprocess.run([PY, "codec_pairs.py", "--data", src, "--out", out + "bad"], cwd=TRAINING,
                           capture_output=True, text=True, timeout=60)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("001.jpg: cannot read as an image", r.stderr)

    def test_make_tiny_onnx(self):
        out = os.path.join(self.tmp, "tiny")
        self.assertEqual(make_tiny_onnx.main(["--out", out]), 0)
        self.check_card(os.path.join(out, "tiny_a.json"), "tiny_conv", max_batch=0)
        self.check_card(os.path.join(out, "tiny_b.json"), "tiny_vit", max_batch=1)
        with open(os.path.join(out, "expected.json")) as f:
            expected = json.load(f)
        # The recipes rebuild the inputs; OpenCV on those inputs gives the recorded probabilities.
        blob = np.stack([export.to_tensor(export.render_recipe(r)).numpy() for r in expected["inputs"]])
        for name, m in expected["models"].items():
            net = cv2.dnn.readNetFromONNX(os.path.join(out, m["file"]))
            got = []
            for b in blob:
                net.setInput(b[None])
                got.append(export.softmax(net.forward()))
            self.assertLessEqual(float(np.abs(np.concatenate(got) - np.array(m["probs"])).max()), TOL)


if __name__ == "__main__":
    unittest.main(verbosity=2)
