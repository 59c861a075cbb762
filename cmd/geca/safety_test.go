package main

import (
	"runtime"
	"testing"

	"geca/engine"
	"geca/engine/data"
	"geca/engine/train"
)

// The training estimate covers what a trainer really holds once it has
// taken a step (measured as live heap), without being wildly more.
func TestTrainBytesCoversATrainer(t *testing.T) {
	cfg := engine.Config{Name: "t", GridH: 12, GridW: 12, InChannels: 1, HiddenChannels: 6, EmbedDim: 32, Heads: 2,
		MLPDim: 48, NumClasses: 2, M: 4, UpdateRate: 0.5}
	const batch = 8
	ds := &data.Dataset{N: batch, H: 12, W: 12, C: 1, Classes: []string{"a", "b"}, Labels: make([]int, batch), Pixels: make([]float32, batch*144)}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	opt := train.DefaultOptions()
	opt.Batch = batch
	tr, err := train.NewTrainer(cfg, opt, ds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tr.TrainStep(); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(tr)
	live := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	est := trainBytes(cfg, batch)
	if live > est || est > 4*live {
		t.Errorf("a trainer holds %d bytes after a step, estimated %d", live, est)
	}
}
