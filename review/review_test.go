package review

import (
	"reflect"
	"testing"
)

func TestPathSteps(t *testing.T) {
	cases := []struct {
		why  string
		want []string
	}{
		{"doc:d#viewer@user:a", []string{"doc:d#viewer@user:a"}},
		{"doc:d#folder@folder:f -> folder:f#reader@user:a[expiration:2030-01-01T00:00:00Z]",
			[]string{"doc:d#folder@folder:f", "folder:f#reader@user:a"}},
		{"doc:d#a@user:x & doc:d#b@user:x[only_on]", []string{"doc:d#a@user:x", "doc:d#b@user:x"}},
		{"agent:p: dataset:x#reader@agent:p; agent:q: dataset:x#reader@agent:q",
			[]string{"dataset:x#reader@agent:p", "dataset:x#reader@agent:q"}},
	}
	for _, tc := range cases {
		if got := pathSteps(tc.why); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("pathSteps(%q) = %q, want %q", tc.why, got, tc.want)
		}
	}
}
