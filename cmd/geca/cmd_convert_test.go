package main

import (
	"math"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"geca/engine/ckpt"
)

func TestConvertCommand(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		in, weights, heads string
	}{
		{"tiny.pt", "", ""},
		{"tiny.pt", "model", ""},
		{"tiny_bf16.pt", "", ""},
		{"tiny_bare.pt", "", "2"},
	} {
		t.Run(c.in, func(t *testing.T) {
			out := filepath.Join(dir, strings.TrimSuffix(c.in, ".pt")+c.weights+".safetensors")
			args := []string{"convert", ckptData + c.in, out}
			opt := ckpt.Options{Weights: c.weights}
			if c.weights != "" {
				args = append(args, "--weights", c.weights)
			}
			if c.heads != "" {
				args = append(args, "--heads", c.heads)
				opt.Heads = 2
			}
			code, stdout, errOut := capture(t, args...)
			if code != 0 {
				t.Fatalf("%v: exit %d: %s", args, code, errOut)
			}
			if !strings.Contains(stdout, "wrote "+out) {
				t.Errorf("stdout %q", stdout)
			}
			src, err := ckpt.Load(ckptData+c.in, opt)
			if err != nil {
				t.Fatal(err)
			}
			dst, err := ckpt.Load(out, ckpt.Options{})
			if err != nil {
				t.Fatal(err)
			}
			// Identical tensors, in the same order, and the same config.
			if !slices.Equal(src.Names, dst.Names) || dst.Weights != src.Weights || dst.Format != "safetensors" {
				t.Fatalf("%s: names/weights differ: %v %s vs %v %s", c.in, src.Names, src.Weights, dst.Names, dst.Weights)
			}
			for _, n := range src.Names {
				a, b := src.Tensors[n], dst.Tensors[n]
				if !slices.Equal([]int(a.Shape()), []int(b.Shape())) {
					t.Fatalf("%s: %s shape %v vs %v", c.in, n, a.Shape(), b.Shape())
				}
				da, db := a.Data().([]float32), b.Data().([]float32)
				for i := range da {
					if math.Float32bits(da[i]) != math.Float32bits(db[i]) {
						t.Fatalf("%s: %s[%d] %v vs %v", c.in, n, i, da[i], db[i])
					}
				}
			}
			c1, err := src.Config()
			if err != nil {
				t.Fatal(err)
			}
			c2, err := dst.Config()
			if err != nil {
				t.Fatal(err)
			}
			if c1 != c2 {
				t.Fatalf("%s: config %+v became %+v", c.in, c1, c2)
			}
			if !reflect.DeepEqual(src.Args, dst.Args) {
				t.Fatalf("%s: args %#v became %#v", c.in, src.Args, dst.Args)
			}
			if dst.Opt != nil || dst.Section("model") != nil && c.weights == "" {
				t.Fatalf("%s: optimizer or extra weights kept", c.in)
			}
			if _, _, err := ckpt.LoadModel(out, ckpt.Options{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	// The converted file is much smaller than the checkpoint (no model copy, no optimizer state).
	a, _ := os.Stat(ckptData + "tiny.pt")
	b, _ := os.Stat(filepath.Join(dir, "tiny.safetensors"))
	if b.Size()*3 > a.Size() {
		t.Errorf("converted file is %d bytes, checkpoint %d", b.Size(), a.Size())
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"convert", ckptData + "tiny.pt"}, 2, "IN and OUT are required"},
		{[]string{"convert", ckptData + "tiny.pt", ckptData + "tiny.pt"}, 2, "is the input"},
		{[]string{"convert", "a", "b", "c"}, 2, `unexpected argument "c"`},
		{[]string{"convert", ckptData + "tiny.pt", filepath.Join(dir, "x.safetensors"), "--weights", "opt"}, 2, `--weights "opt"`},
		{[]string{"convert", ckptData + "tiny_nan.pt", filepath.Join(dir, "nan.safetensors")}, 1, "non-finite"},
		{[]string{"convert", ckptData + "tiny_bare.pt", filepath.Join(dir, "bare.safetensors")}, 1, "number of attention heads"},
		{[]string{"convert", ckptData + "tiny_xs_args.pt", filepath.Join(dir, "xs.safetensors")}, 1, "args.model GeCA-XS implies embed_dim 384"},
		{[]string{"convert", ckptData + "bad_offset.pt", filepath.Join(dir, "off.safetensors")}, 1, "past the end of storage"},
	} {
		t.Run(strings.Join(c.args, " "), func(t *testing.T) {
			code, _, errOut := capture(t, c.args...)
			if code != c.code || !strings.Contains(errOut, c.want) {
				t.Errorf("geca %s: exit %d, stderr %q; want exit %d and %q", strings.Join(c.args, " "), code, errOut, c.code, c.want)
			}
		})
	}
	for _, n := range []string{"nan", "bare", "xs", "off"} {
		t.Run(n, func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(dir, n+".safetensors")); err == nil {
				t.Errorf("a failed convert wrote %s.safetensors", n)
			}
		})
	}
}
