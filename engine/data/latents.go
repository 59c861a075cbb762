package data

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"geca/internal/membudget"
	"geca/internal/npy"
	"geca/internal/safefile"
)

// LoadLatents reads pre-extracted SD-VAE latents in the layout of the official
// extract_features.py (docs/model.md §7): a folder holding features*/{i}.npy, each
// (1, C, H, W) already scaled by 0.18215, and the matching labels*/{i}.npy,
// each (1, K) multi-hot. The latents become cell-major pixels and the labels
// Dataset.Multi; classes are named by classes.txt when the folder has one
// (EncodeFolderTo writes it), by index otherwise.
func LoadLatents(dir string) (*Dataset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var feat, lab string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		switch {
		case strings.HasPrefix(e.Name(), "features") && feat == "":
			feat = e.Name()
		case strings.HasPrefix(e.Name(), "labels") && lab == "":
			lab = e.Name()
		}
	}
	if feat == "" || lab == "" {
		return nil, fmt.Errorf("%s: want subfolders features*/ and labels*/ of .npy files (the layout extract_features.py writes)", dir)
	}
	files, err := os.ReadDir(filepath.Join(dir, feat))
	if err != nil {
		return nil, err
	}
	var ids []int
	for _, f := range files {
		if id, err := strconv.Atoi(strings.TrimSuffix(f.Name(), ".npy")); err == nil && strings.HasSuffix(f.Name(), ".npy") {
			ids = append(ids, id)
		}
	}
	sort.Ints(ids)
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no {i}.npy latents", filepath.Join(dir, feat))
	}
	d := &Dataset{}
	K := 0
	for _, id := range ids {
		fp := filepath.Join(dir, feat, strconv.Itoa(id)+".npy")
		a, err := npy.ReadFile(fp)
		if err != nil {
			return nil, err
		}
		sh := a.Shape
		if len(sh) == 3 {
			sh = append([]int{1}, sh...)
		}
		if len(sh) != 4 || sh[0] != 1 {
			return nil, fmt.Errorf("%s: shape %v, want (1, C, H, W)", fp, a.Shape)
		}
		if i := nonFinite(a.Data); i >= 0 {
			return nil, fmt.Errorf("%s: value %d is %v; a latent must be finite", fp, i, a.Data[i])
		}
		c, h, w := sh[1], sh[2], sh[3]
		if d.N == 0 {
			d.C, d.H, d.W = c, h, w
			// All latents have the first one's size: the dataset's memory is
			// known now.
			if err := membudget.Check(fmt.Sprintf("%s: %d latents of %dx%dx%d", dir, len(ids), c, h, w),
				membudget.Bytes(len(ids), c, h, w, 4)); err != nil {
				return nil, err
			}
		} else if c != d.C || h != d.H || w != d.W {
			return nil, fmt.Errorf("%s: shape %v differs from the first latent's (1, %d, %d, %d)", fp, a.Shape, d.C, d.H, d.W)
		}
		for p := 0; p < h*w; p++ {
			for ch := 0; ch < c; ch++ {
				d.Pixels = append(d.Pixels, a.Data[ch*h*w+p])
			}
		}
		lp := filepath.Join(dir, lab, strconv.Itoa(id)+".npy")
		l, err := npy.ReadFile(lp)
		if err != nil {
			return nil, err
		}
		if i := nonFinite(l.Data); i >= 0 {
			return nil, fmt.Errorf("%s: label entry %d is %v", lp, i, l.Data[i])
		}
		if K == 0 {
			K = len(l.Data)
			if K < 1 || K > 100000 {
				return nil, fmt.Errorf("%s: %d label entries", lp, K)
			}
			if err := membudget.Check(fmt.Sprintf("%s: %d labels of %d classes", dir, len(ids), K),
				membudget.Sum(membudget.Bytes(len(ids), c, h, w, 4), membudget.Bytes(len(ids), K+2, 4))); err != nil {
				return nil, err
			}
		} else if len(l.Data) != K {
			return nil, fmt.Errorf("%s: %d label entries, the first label has %d", lp, len(l.Data), K)
		}
		d.Multi = append(d.Multi, l.Data...)
		best := 0
		for k, v := range l.Data {
			if v > l.Data[best] {
				best = k
			}
		}
		d.Labels = append(d.Labels, best)
		d.N++
	}
	d.Classes = latentClassNames(dir, K)
	return d, d.Validate()
}

// maxClassesFile bounds classes.txt (100000 names of 80 characters).
const maxClassesFile = 8 << 20

// latentClassNames reads dir/classes.txt (written by EncodeFolderTo; one
// name per line) when it names K classes, and numbers the classes otherwise.
func latentClassNames(dir string, K int) []string {
	var names []string
	if b, err := safefile.ReadFile(filepath.Join(dir, "classes.txt"), maxClassesFile); err == nil {
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			names = append(names, strings.TrimSpace(l))
		}
	}
	if len(names) == K && !slices.Contains(names, "") {
		return names
	}
	names = names[:0]
	for k := 0; k < K; k++ {
		names = append(names, strconv.Itoa(k))
	}
	return names
}

// nonFinite returns the index of the first NaN or infinity in v, or -1.
func nonFinite(v []float32) int {
	for i, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return i
		}
	}
	return -1
}
