package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"

	"geca/internal/npy"
	"geca/internal/safefile"
)

// LatentFolder is where EncodeFolderTo writes: extract_features.py's layout,
// which LoadLatents and the official train.py read.
type LatentFolder struct {
	Dir string
	// Fold names the subfolders features_{Fold} and labels_{Fold} (default "train").
	Fold string
	// VAE names the encoder in the folder's record (encode.json), so that a
	// resumed run cannot mix latents of two VAEs.
	VAE string
}

// EncodeReport counts what EncodeFolderTo did.
type EncodeReport struct {
	Total   int // images in the folder
	Encoded int // encoded by this run
	Kept    int // already in the output from an earlier run
}

// latentRecord is encode.json: where the latents of a folder came from.
// A resumed run must match it field by field.
type latentRecord struct {
	Images  string   `json:"images"`
	VAE     string   `json:"vae"`
	Size    int      `json:"size"`
	Latent  [3]int   `json:"latent"` // C, H, W
	Sample  bool     `json:"sample"`
	Flip    bool     `json:"flip"`
	Seed    uint64   `json:"seed"`
	Classes []string `json:"classes"`
	Files   []string `json:"files"` // image i's path, relative to Images
}

const latentRecordName = "encode.json"

// EncodeFolderTo encodes a folder of images as EncodeFolder does and writes
// each latent as soon as it is made:
//
//	Dir/features_{Fold}/{i}.npy   (1, C, H, W) float32, scaled as the sampler uses it
//	Dir/labels_{Fold}/{i}.npy     (1, K) float32, one-hot
//	Dir/classes.txt               the class names, one per line, label order
//	Dir/encode.json               the images, VAE and options they came from
//
// Encoding with a large VAE is slow, so nothing done is lost: each file
// appears whole or not at all, a run that stops (an error, ctx cancelled)
// keeps what it wrote, and a new run with the same images and options
// encodes only the rest. A Dir holding latents of other images or options
// is an error, not overwritten.
func EncodeFolderTo(ctx context.Context, images string, size int, enc ImageEncoder, opt EncodeOptions, to LatentFolder) (EncodeReport, error) {
	var rep EncodeReport
	job, err := newEncodeJob(images, size, enc, opt)
	if err != nil {
		return rep, err
	}
	fold := to.Fold
	if fold == "" {
		fold = "train"
	}
	if strings.ContainsAny(fold, `/\`) || fold == "." || fold == ".." {
		return rep, fmt.Errorf("fold %q: want a plain name", fold)
	}
	if inside(to.Dir, images) {
		return rep, fmt.Errorf("%s: the latents folder is inside the images folder %s, where it would be read as a class; put it elsewhere", to.Dir, images)
	}
	rec := latentRecord{Images: images, VAE: to.VAE, Size: size, Latent: [3]int{job.lc, job.lh, job.lw},
		Sample: opt.Sample, Flip: opt.Flip, Seed: opt.Seed, Classes: job.classes}
	if abs, err := filepath.Abs(images); err == nil {
		rec.Images = abs
	}
	for _, f := range job.files {
		rel, err := filepath.Rel(images, f.path)
		if err != nil {
			rel = f.path
		}
		rec.Files = append(rec.Files, filepath.ToSlash(rel))
	}
	rep.Total = len(job.files)
	featDir := filepath.Join(to.Dir, "features_"+fold)
	labDir := filepath.Join(to.Dir, "labels_"+fold)
	if err := claimLatentFolder(to.Dir, rec); err != nil {
		return rep, err
	}
	for _, d := range []string{featDir, labDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return rep, err
		}
	}
	if err := writeFileAtomic(filepath.Join(to.Dir, "classes.txt"), []byte(strings.Join(job.classes, "\n")+"\n")); err != nil {
		return rep, err
	}
	name := func(dir string, i int) string { return filepath.Join(dir, strconv.Itoa(i)+".npy") }
	done := func(i int) bool {
		// The feature file is written last: it marks image i done.
		_, e1 := os.Stat(name(featDir, i))
		_, e2 := os.Stat(name(labDir, i))
		if e1 == nil && e2 == nil {
			rep.Kept++
			return true
		}
		return false
	}
	K := len(job.classes)
	label := make([]float32, K)
	err = job.run(ctx, done, func(i int, z []float32) error {
		clear(label)
		label[job.files[i].label] = 1
		if err := writeNPYAtomic(name(labDir, i), []int{1, K}, label); err != nil {
			return err
		}
		if err := writeNPYAtomic(name(featDir, i), []int{1, job.lc, job.lh, job.lw}, z); err != nil {
			return err
		}
		rep.Encoded++
		return nil
	})
	return rep, err
}

// claimLatentFolder makes dir's record rec, or checks that the record it
// already has is rec.
func claimLatentFolder(dir string, rec latentRecord) error {
	path := filepath.Join(dir, latentRecordName)
	b, err := safefile.ReadFile(path, maxRecordFile)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if entries, _ := os.ReadDir(dir); len(entries) > 0 {
			return fmt.Errorf("%s: the folder is not empty and has no %s; give a new or empty folder for the latents", dir, latentRecordName)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		out, _ := json.MarshalIndent(rec, "", "  ")
		return writeFileAtomic(path, append(out, '\n'))
	case err != nil:
		return err
	}
	var old latentRecord
	if err := json.Unmarshal(b, &old); err != nil {
		return fmt.Errorf("%s: %v", path, err)
	}
	if reflect.DeepEqual(old, rec) {
		return nil
	}
	// Name the first field that differs, so the user knows what changed.
	ov, nv := reflect.ValueOf(old), reflect.ValueOf(rec)
	for f := 0; f < ov.NumField(); f++ {
		if !reflect.DeepEqual(ov.Field(f).Interface(), nv.Field(f).Interface()) {
			tag := ov.Type().Field(f).Tag.Get("json")
			what := fmt.Sprintf("%v, now %v", ov.Field(f).Interface(), nv.Field(f).Interface())
			if tag == "files" || tag == "classes" {
				what = fmt.Sprintf("%d entries, now %d", ov.Field(f).Len(), nv.Field(f).Len())
				if ov.Field(f).Len() == nv.Field(f).Len() {
					what = "the same count, different names"
				}
			}
			return fmt.Errorf("%s: holds latents of other images or settings (%s: %s); give a new folder, or the same images and options to resume", dir, tag, what)
		}
	}
	return nil
}

// maxRecordFile bounds encode.json (its list of a million images is about
// 50 MB).
const maxRecordFile = 256 << 20

// writeNPYAtomic writes an array whole or not at all (npy.WriteFile writes
// through safefile).
func writeNPYAtomic(path string, shape []int, data []float32) error {
	return npy.WriteFile(path, shape, data)
}

// writeFileAtomic writes b whole or not at all.
func writeFileAtomic(path string, b []byte) error { return safefile.WriteBytes(path, b) }

// inside reports whether path is dir or lies below it.
func inside(path, dir string) bool {
	p, err1 := filepath.Abs(path)
	d, err2 := filepath.Abs(dir)
	if err1 != nil || err2 != nil {
		return false
	}
	rel, err := filepath.Rel(d, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}
