package eval

import (
	"context"
	"fmt"

	"geca/engine"
	"geca/engine/sample"
)

// Result is the agreement of a classifier with the requested classes.
type Result struct {
	PerClass  int
	Agreement float64   // overall fraction of samples labelled as requested
	ByClass   []float64 // per requested class
	Confusion [][]int   // [requested][predicted]
	Variety   []float64 // per requested class: see Variety
	Images    []float32 // the samples, class-major (PerClass per class)
}

// Agreement samples perClass images of every class from m with the app's
// sampler (engine/sample, what the app shows and train.Sample draws) and
// reports how often c assigns the requested class. opt gives the steps, GHG,
// CFG, seed and any other sampler setting; the labels and N are set here.
// Samples are drawn in batches of batch images (memory), batch k with seed
// opt.Seed + k·batch.
func Agreement(c *Classifier, m *engine.Model, perClass, batch int, opt sample.Options) (*Result, error) {
	cfg := m.Cfg
	// The sampler returns (C, H, W) planes and the classifier reads images
	// as the data set stores them, (H, W, C): the same for one channel.
	if cfg.InChannels != 1 {
		return nil, fmt.Errorf("only single-channel models are supported, got %d channels", cfg.InChannels)
	}
	if n := cfg.Cells() * cfg.InChannels; n != c.In {
		return nil, fmt.Errorf("the model draws %d-pixel images, the classifier reads %d", n, c.In)
	}
	K := cfg.NumClasses
	var labels []int
	for k := 0; k < K; k++ {
		for i := 0; i < perClass; i++ {
			labels = append(labels, k)
		}
	}
	draw := func(ls []int, seed uint64) ([]float32, error) {
		o := opt
		o.Seed, o.N, o.Labels = seed, len(ls), nil
		for _, l := range ls {
			y := make([]float32, K)
			y[l] = 1
			o.Labels = append(o.Labels, y)
		}
		return sample.Run(context.Background(), m, o)
	}
	return score(c, K, perClass, labels, batch, opt.Seed, draw)
}

func score(c *Classifier, K, perClass int, labels []int, batch int, seed uint64, draw func([]int, uint64) ([]float32, error)) (*Result, error) {
	res := &Result{PerClass: perClass, ByClass: make([]float64, K), Confusion: make([][]int, K)}
	for k := range res.Confusion {
		res.Confusion[k] = make([]int, c.Classes)
	}
	for s := 0; s < len(labels); s += batch {
		e := min(s+batch, len(labels))
		imgs, err := draw(labels[s:e], seed+uint64(s))
		if err != nil {
			return nil, err
		}
		res.Images = append(res.Images, imgs...)
	}
	pred := c.Predict(res.Images, len(labels))
	ok := 0
	for i, l := range labels {
		res.Confusion[l][pred[i]]++
		if pred[i] == l {
			ok++
			res.ByClass[l] += 1 / float64(perClass)
		}
	}
	res.Agreement = float64(ok) / float64(len(labels))
	res.Variety = Variety(res.Images, K, perClass, c.In)
	return res, nil
}
