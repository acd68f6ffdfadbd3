package v1alpha1_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/tpctl/tpctl/api/v1alpha1"
)

// The API server enforces the same limits as ValidateFiles, so kubectl
// cannot store what tpctl refuses.
func TestFilesBoundedByServerRules(t *testing.T) {
	v := newServerValidator(t, v1alpha1.KindPipeline)
	big := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings, one per expected error; nil = accepted
	}{
		{name: "parsers and lua", files: map[string]string{"parsers.conf": "[PARSER]\n", "filter.lua": "function f() end", "ca-bundle_1.pem": "x"}},
		{name: "largest file", files: map[string]string{"a": big(v1alpha1.MaxFileBytes)}},
		{name: "largest total", files: map[string]string{"a": big(v1alpha1.MaxFileBytes), "b": big(v1alpha1.MaxFileBytes)}},
		{name: "file too large", files: map[string]string{"a": big(v1alpha1.MaxFileBytes + 1)}, want: []string{"Too long", "a file holds at most 256 KiB"}},
		// 100000 three-byte characters: within maxLength, over 256 KiB in bytes.
		{name: "multibyte file too large", files: map[string]string{"a": strings.Repeat("€", 100000)}, want: []string{"a file holds at most 256 KiB"}},
		{
			name:  "total too large",
			files: map[string]string{"a": big(v1alpha1.MaxFileBytes), "b": big(v1alpha1.MaxFileBytes), "c": "x"},
			want:  []string{"the files hold at most 512 KiB"},
		},
		{name: "slash", files: map[string]string{"a/b": "x"}, want: []string{"a file name is at most 253"}},
		{name: "dot dot", files: map[string]string{"..data": "x"}, want: []string{"a file name is at most 253"}},
		{name: "space", files: map[string]string{"a b": "x"}, want: []string{"a file name is at most 253"}},
		{name: "configuration's name", files: map[string]string{"pipeline.yaml": "x"}, want: []string{"the configuration's own file names"}},
		{name: "too many", files: manyFiles(v1alpha1.MaxFiles + 1), want: []string{"must have at most 32 items"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString(pipelineHead + "spec:\n  instance: core\n  files:\n")
			for k, c := range tc.files {
				fmt.Fprintf(&b, "    %q: %q\n", k, c)
			}
			got := v.validate(t, b.String(), "")
			require.Len(t, got, len(tc.want), "errors: %q", got)
			for i, w := range tc.want {
				assert.Contains(t, got[i], w)
			}
			// tpctl's own check agrees with the server.
			files := map[string]v1alpha1.FileContent{}
			for k, c := range tc.files {
				files[k] = v1alpha1.FileContent(c)
			}
			assert.Equal(t, len(tc.want) == 0, len(v1alpha1.ValidateFiles(files)) == 0, "ValidateFiles: %q", v1alpha1.ValidateFiles(files))
		})
	}
}

func manyFiles(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("f%d.lua", i)] = "x"
	}
	return m
}

func TestValidateFileName(t *testing.T) {
	for _, ok := range []string{"parsers.conf", "a", "ca.crt", "x-y_z.1", ".hidden"} {
		assert.NoError(t, v1alpha1.ValidateFileName(ok), ok)
	}
	for name, want := range map[string]string{
		"":              "empty",
		"a/b":           "no '/'",
		"..":            "'..'",
		"a..b":          "'..'",
		".":             "'.'",
		"pipeline.conf": "configuration's own",
		"ü":             "only letters",
		big254():        "longer than 253",
	} {
		err := v1alpha1.ValidateFileName(name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want)
	}
}

func big254() string { return strings.Repeat("a", 254) }

func TestValidateFilesMessages(t *testing.T) {
	probs := v1alpha1.ValidateFiles(map[string]v1alpha1.FileContent{
		"a": v1alpha1.FileContent(strings.Repeat("x", v1alpha1.MaxFileBytes+1)),
		"b": v1alpha1.FileContent(strings.Repeat("x", v1alpha1.MaxFileBytes)),
	})
	assert.Equal(t, []string{
		`file "a": 262145 bytes, more than the 262144 (256 KiB) a file may hold`,
		`files: 524289 bytes together, more than the 524288 (512 KiB) a pipeline's files may hold`,
	}, probs)
}
