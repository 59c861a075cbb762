package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"gorgonia.org/tensor"

	"geca/assets"
	"geca/engine/ckpt"
	"geca/internal/safefile"
)

// geca sample keeps each row of samples (one run per M) as soon as it is
// finished, in a partial file next to its first output; a run that is
// interrupted (Ctrl-C, a failure) and started again with the same
// arguments computes only the rows it lacks. The file is removed once the
// outputs are written.

// partialSuffix is added to the first output's name to name the partial
// file.
const partialSuffix = ".partial.safetensors"

// metaResume is the partial file's metadata key for what the rows are of.
const metaResume = "geca.sample.resume"

// sampleKey is everything that decides the samples: a partial file is
// resumed only when its key is the same, field by field.
type sampleKey struct {
	Checkpoint string      `json:"checkpoint"` // absolute path, size and time of the file ("embedded" for the built-in model)
	Weights    string      `json:"weights"`
	Heads      int         `json:"heads"`
	Steps      string      `json:"steps"`
	Method     string      `json:"method"`
	Eta        float32     `json:"eta"`
	GHG        bool        `json:"ghg"`
	CFG        float32     `json:"cfg"`
	Rate       float32     `json:"rate"`
	ClipX0     bool        `json:"clip_x0,omitempty"`
	Labels     [][]float32 `json:"labels"`
	N          int         `json:"n"`
	Seed       uint64      `json:"seed"`
	M          []int       `json:"m"`
	Device     string      `json:"device"` // where the samples are computed (a GPU rounds differently)
	Shape      [3]int      `json:"shape"`  // C, H, W of one sample
}

// checkpointID names a built-in model by its name and hash, a checkpoint
// file by where it is, its size and its modification time, which change
// when it is rewritten.
func checkpointID(path string, builtin *assets.Builtin) string {
	if builtin != nil {
		return "built-in " + builtin.Name + " sha256 " + builtin.Hash()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	fi, err := os.Stat(path)
	if err != nil {
		return abs
	}
	return fmt.Sprintf("%s (%d bytes, %s)", abs, fi.Size(), fi.ModTime().UTC().Format("2006-01-02T15:04:05.000000000Z"))
}

// partialRows reads the rows a partial file holds for key: nil where a row
// is missing. A file of other samples is ignored (and later replaced); a
// file that cannot be read is an error, so nothing is overwritten unseen.
func partialRows(path string, key sampleKey) ([][]float32, error) {
	rows := make([][]float32, len(key.M))
	if _, err := os.Stat(path); os.IsNotExist(err) {
		return rows, nil
	}
	ts, _, meta, err := ckpt.LoadSafetensors(path)
	if err != nil {
		return nil, fmt.Errorf("%w (the partial samples of an earlier run; delete it to start afresh)", err)
	}
	want, _ := json.Marshal(key)
	if meta[metaResume] != string(want) {
		return rows, nil
	}
	per := key.N * key.Shape[0] * key.Shape[1] * key.Shape[2]
	for r := range rows {
		t, ok := ts["row."+strconv.Itoa(r)]
		if !ok {
			continue
		}
		d, ok := t.Data().([]float32)
		if !ok || len(d) != per {
			return nil, fmt.Errorf("%s: row %d holds %d values, want %d", path, r, len(d), per)
		}
		rows[r] = d
	}
	return rows, nil
}

// savePartial writes the finished rows to path (whole or not at all).
func savePartial(path string, key sampleKey, rows [][]float32) error {
	js, err := json.Marshal(key)
	if err != nil {
		return err
	}
	ts := map[string]*tensor.Dense{}
	var names []string
	for r, d := range rows {
		if d == nil {
			continue
		}
		name := "row." + strconv.Itoa(r)
		ts[name] = tensor.New(tensor.WithShape(key.N, key.Shape[0], key.Shape[1], key.Shape[2]), tensor.WithBacking(d))
		names = append(names, name)
	}
	return ckpt.SaveSafetensors(path, ts, names, map[string]string{metaResume: string(js)})
}

// removePartial removes a partial file once its rows are in the outputs.
func removePartial(path string) {
	if safefile.IsRegular(path) {
		os.Remove(path)
	}
}
