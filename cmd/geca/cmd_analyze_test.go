package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"geca/engine/data"
)

func needFashionMNIST(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(filepath.Join(data.FashionMNISTDir, "t10k-images-idx3-ubyte.gz")); err != nil {
		t.Skip("Fashion-MNIST is not installed (Debian package dataset-fashion-mnist)")
	}
}

// analyze-m on the built-in model writes the CSV and both charts; two
// shards merged give the single run's numbers.
func TestAnalyzeM(t *testing.T) {
	needFashionMNIST(t)
	dir := t.TempDir()
	common := []string{"analyze-m", "--ms", "1,4,8", "--timesteps", "200,800", "--images", "4"}
	code, _, stderr := capture(t, append(common, "--out", filepath.Join(dir, "all"))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for k := 0; k < 2; k++ {
		code, _, stderr = capture(t, append(common, "--shard", []string{"0/2", "1/2"}[k], "--out", filepath.Join(dir, []string{"s0", "s1"}[k]))...)
		if code != 0 {
			t.Fatalf("shard %d: exit %d: %s", k, code, stderr)
		}
	}
	code, _, stderr = capture(t, "analyze-m", "--merge", filepath.Join(dir, "s0.csv")+","+filepath.Join(dir, "s1.csv"), "--out", filepath.Join(dir, "merged"))
	if code != 0 {
		t.Fatalf("merge: exit %d: %s", code, stderr)
	}
	all, _, _, err := readAnalysis(filepath.Join(dir, "all.csv"))
	if err != nil {
		t.Fatal(err)
	}
	merged, trained, _, err := readAnalysis(filepath.Join(dir, "merged.csv"))
	if err != nil || trained != 8 {
		t.Fatalf("merged: trained M %d, %v", trained, err)
	}
	for i, p := range all.Points {
		q := merged.Points[i]
		if p.N != 4 || q.N != 4 || p.M != q.M || p.T != q.T {
			t.Fatalf("point %d: %+v vs %+v", i, p, q)
		}
		if d := p.EpsMSE - q.EpsMSE; d > 1e-12 || d < -1e-12 {
			t.Errorf("M=%d t=%d: ε-MSE sums %v and %v", p.M, p.T, p.EpsMSE, q.EpsMSE)
		}
	}
	// The trained model denoises better with its trained M than with one update.
	for ti := range all.Timesteps {
		one, _, _ := all.At(0, ti).Means()
		trained, _, _ := all.At(2, ti).Means()
		if !(trained < one) {
			t.Errorf("t=%d: ε-MSE %v at M=8, %v at M=1", all.Timesteps[ti], trained, one)
		}
	}
	for _, f := range []string{"all.heat.png", "all.lines.png", "merged.heat.png"} {
		t.Run(f, func(t *testing.T) {
			if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Size() < 1000 {
				t.Errorf("%s: %v", f, err)
			}
		})
	}
}

func TestAnalyzeMErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("M,t\n1,2\n"), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"analyze-m"}, "--out PREFIX is required"},
		{[]string{"analyze-m", "--ms", "4,2", "--out", filepath.Join(dir, "x")}, "ascending"},
		{[]string{"analyze-m", "--timesteps", "5000", "--out", filepath.Join(dir, "x")}, "out of range"},
		{[]string{"analyze-m", "--shard", "3/2", "--out", filepath.Join(dir, "x")}, "0 ≤ K < N"},
		{[]string{"analyze-m", "--merge", bad, "--out", filepath.Join(dir, "x")}, "not a CSV written by geca analyze-m"},
		{[]string{"analyze-m", "--out", filepath.Join(dir, "no", "x")}, "does not exist"},
		{[]string{"analyze-m", "--model", "emoji", "--agreement", "2", "--out", filepath.Join(dir, "x")}, "needs the built-in Fashion-MNIST model"},
		{[]string{"analyze-m", "--model", "emoji", "--ckpt", "m.pt", "--out", filepath.Join(dir, "x")}, "not both"},
		{[]string{"analyze-m", "--agreement-ghg", "maybe", "--out", filepath.Join(dir, "x")}, "--agreement-ghg \"maybe\": want on or off"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := capture(t, c.args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("%v: exit %d, stderr %q; want %q", c.args, code, stderr, c.want)
			}
		})
	}
}

// analyze-m on the emoji model measures on its ten emoji (shifted as in
// training) by default: every M is measured on every image, and more
// updates reach more cells.
func TestAnalyzeMEmoji(t *testing.T) {
	if _, err := os.Stat(data.EmojiFontPath); err != nil {
		t.Skipf("no colour emoji font (Debian: fonts-noto-color-emoji): %v", err)
	}
	out := filepath.Join(t.TempDir(), "em")
	code, _, stderr := capture(t, "analyze-m", "--model", "emoji", "--ms", "2,8", "--timesteps", "500", "--images", "10", "--out", out)
	if code != 0 || !strings.Contains(stderr, "GeCA-Emoji") || !strings.Contains(stderr, " (trained M 8), 10 images") {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	b, err := os.ReadFile(out + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(rows) != 4 || !strings.HasPrefix(rows[2], "2,500,10,") || !strings.HasPrefix(rows[3], "8,500,10,") {
		t.Fatalf("CSV rows %q", rows)
	}
	reach := func(row string) float64 {
		f := strings.Split(row, ",")
		v, err := strconv.ParseFloat(f[9], 64)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if r2, r8 := reach(rows[2]), reach(rows[3]); !(r2 > 0 && r8 > 3*r2) {
		t.Fatalf("reach at M=2 %.3f, at M=8 %.3f: want growth with M", r2, r8)
	}
}
