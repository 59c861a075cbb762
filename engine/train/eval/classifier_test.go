package eval

import (
	"errors"
	"testing"

	"geca/engine/data"
)

func loadFMNIST(t *testing.T, split string) *data.Dataset {
	ds, err := data.LoadFashionMNIST("", split)
	if errors.Is(err, data.ErrNoFashionMNIST) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestClassifierAccuracy: the judge must itself be good on real test images.
func TestClassifierAccuracy(t *testing.T) {
	if testing.Short() {
		t.Skip("trains on Fashion-MNIST")
	}
	train := loadFMNIST(t, "train").Subset(1500)
	test := loadFMNIST(t, "t10k")
	c := TrainClassifier(train, 128, 3, 1)
	acc := c.Accuracy(test)
	t.Logf("MLP trained on %d images: real test accuracy %.3f", train.N, acc)
	if acc < 0.78 {
		t.Fatalf("classifier accuracy %.3f on the real test set, want >= 0.78", acc)
	}
}
