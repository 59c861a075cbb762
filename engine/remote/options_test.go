package remote

import (
	"reflect"
	"testing"

	"geca/engine/sample"
)

// TestOptionsRoundTrip sets every field of sample.Options, one at a time, to a
// value other than its zero and sends it through the wire format: a field
// added to Options but not to the protocol would silently fall back to its
// default on a worker, so a remote run would differ from a local one.
func TestOptionsRoundTrip(t *testing.T) {
	notSent := map[string]bool{
		"Streams": true, // a worker seeds its own streams from Seed; replay streams stay local
	}
	typ := reflect.TypeFor[sample.Options]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if notSent[f.Name] {
			continue
		}
		t.Run(f.Name, func(t *testing.T) {
			var o sample.Options
			v := reflect.ValueOf(&o).Elem().Field(i)
			switch v.Kind() {
			case reflect.String:
				v.SetString("ddim7")
			case reflect.Bool:
				v.SetBool(true)
			case reflect.Int, reflect.Int64:
				v.SetInt(7)
			case reflect.Uint64:
				v.SetUint(7)
			case reflect.Float32:
				v.SetFloat(0.75)
			case reflect.Slice:
				v.Set(reflect.ValueOf([][]float32{{0, 1}}))
			default:
				t.Fatalf("field %s of kind %s: teach this test (and the protocol) about it", f.Name, v.Kind())
			}
			var got newSamplerMsg
			if err := decode(tNewSampler, encode(&newSamplerMsg{Model: 1, Opt: o}), &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got.Opt, o) {
				t.Errorf("sent %+v, the worker read %+v", o, got.Opt)
			}
		})
	}
}
