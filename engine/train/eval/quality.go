package eval

import (
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
	res := &Result{PerClass: perClass, ByClass: make([]float64, K), Confusion: make([][]int, K)}
	for k := range res.Confusion {
		res.Confusion[k] = make([]int, c.Classes)
	}
	base := opt.Seed
	for s := 0; s < len(labels); s += batch {
		e := min(s+batch, len(labels))
		o := opt
		o.Seed = base + uint64(s)
		imgs, err := train.Sample(p, labels[s:e], o)
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
