package eval

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"geca/engine/ckpt"
	"geca/engine/sample"
	"geca/engine/train"
)

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// TestModelQuality measures a trained model (GECA_EVAL_MODEL=FILE): an MLP
// trained on all real Fashion-MNIST training images is scored on the real test
// set, then labels GECA_EVAL_PER_CLASS (100) samples per class drawn with the
// app's sampler, GECA_EVAL_STEPS (50) respaced DDPM steps, GHG on, seed 1
// (GECA_EVAL_CFG guidance, default off), GECA_EVAL_BATCH (50) samples at a
// time. GECA_EVAL_OUT=FILE.png writes the first 10 samples of each class.
//
//	GECA_EVAL_MODEL=assets/fmnist.safetensors GECA_EVAL_OUT=/tmp/grid.png go test -tags openblas ./engine/train/eval -run ModelQuality -v -timeout 2h
func TestModelQuality(t *testing.T) {
	path := os.Getenv("GECA_EVAL_MODEL")
	if path == "" {
		t.Skip("set GECA_EVAL_MODEL=FILE to measure a trained model")
	}
	m, _, err := ckpt.LoadModel(path, ckpt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c := TrainClassifier(loadFMNIST(t, "train"), 256, 5, 1)
	acc := c.Accuracy(loadFMNIST(t, "t10k"))
	t.Logf("judge: MLP 784-256-10, real test accuracy %.4f (%s)", acc, time.Since(start).Round(time.Second))
	per, steps := envInt("GECA_EVAL_PER_CLASS", 100), envInt("GECA_EVAL_STEPS", 50)
	cfgScale, _ := strconv.ParseFloat(os.Getenv("GECA_EVAL_CFG"), 64)
	start = time.Now()
	res, err := Agreement(c, m, per, envInt("GECA_EVAL_BATCH", 50), sample.Options{Steps: strconv.Itoa(steps), GHG: true, CFG: float32(cfgScale), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	var by []string
	for k, a := range res.ByClass {
		by = append(by, fmt.Sprintf("%d:%.2f", k, a))
	}
	t.Logf("samples: %d per class, %d steps, CFG %g: agreement %.4f (%s)\nper class %s", per, steps, cfgScale, res.Agreement, time.Since(start).Round(time.Second), strings.Join(by, " "))
	for k, row := range res.Confusion {
		t.Logf("confusion requested %d -> %v", k, row)
	}
	if out := os.Getenv("GECA_EVAL_OUT"); out != "" {
		K, H, W, C := m.Cfg.NumClasses, m.Cfg.GridH, m.Cfg.GridW, m.Cfg.InChannels
		cols := min(per, 10)
		sel := make([]float32, 0, K*cols*H*W*C)
		for k := 0; k < K; k++ {
			for i := 0; i < cols; i++ {
				n := k*per + i
				sel = append(sel, res.Images[n*H*W*C:(n+1)*H*W*C]...)
			}
		}
		if err := train.WritePNG(out, train.SampleGrid(sel, K, cols, H, W, C, 2)); err != nil {
			t.Fatal(err)
		}
	}
}
