package eval

import (
	"context"
	"fmt"

	"geca/engine"
	"geca/engine/sample"
	"geca/engine/train"
)

// Result is the agreement of a classifier with the requested classes.
type Result struct {
	PerClass  int
	Agreement float64   // overall fraction of samples labelled as requested
	ByClass   []float64 // per requested class
	Confusion [][]int   // [requested][predicted]
	Images    []float32 // the samples, class-major (PerClass per class)
}

// AgreementApp is Agreement with the app's own sampler (engine/sample on the
// engine's inference model), so the score is that of what the app shows. opt
// gives the steps, GHG, CFG and seed; labels and N are set here.
func AgreementApp(c *Classifier, m *engine.Model, perClass, batch int, opt sample.Options) (*Result, error) {
	K := m.Cfg.NumClasses
	var labels []int
	for k := 0; k < K; k++ {
		for i := 0; i < perClass; i++ {
			labels = append(labels, k)
		}
	}
	sample := func(ls []int, seed uint64) ([]float32, error) {
		o := opt
		o.Seed, o.N, o.Labels = seed, len(ls), nil
		for _, l := range ls {
			y := make([]float32, K)
			y[l] = 1
			o.Labels = append(o.Labels, y)
		}
		s, err := newSampler(m, o)
		if err != nil {
			return nil, err
		}
		if err := s.RunToEnd(context.Background()); err != nil {
			return nil, err
		}
		x, err := s.Result()
		if err != nil {
			return nil, err
		}
		if m.Cfg.InChannels != 1 {
			return nil, fmt.Errorf("only single-channel models are supported, got %d channels", m.Cfg.InChannels)
		}
		return x, nil
	}
	return score(c, K, perClass, labels, batch, opt.Seed, sample)
}

var newSampler = sample.New

// Agreement samples perClass images of every class from p and reports how
// often c assigns the requested class. Samples are drawn in batches of
// batch images (memory) with seeds derived from seed.
func Agreement(c *Classifier, p *train.Params[float32], perClass, batch int, opt train.SampleOptions) (*Result, error) {
	K := p.Cfg.NumClasses
	var labels []int
	for k := 0; k < K; k++ {
		for i := 0; i < perClass; i++ {
			labels = append(labels, k)
		}
	}
	return score(c, K, perClass, labels, batch, opt.Seed, func(ls []int, seed uint64) ([]float32, error) {
		o := opt
		o.Seed = seed
		return train.Sample(p, ls, o)
	})
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
	return res, nil
}
