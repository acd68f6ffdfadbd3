package upgrade

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"testing"
)

// helmEncode is Helm's storage encoding of a release record.
func helmEncode(t *testing.T, js string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	if _, err := zw.Write([]byte(js)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(b.Bytes()))
}

func TestDecodeRelease(t *testing.T) {
	js := `{"name":"core","namespace":"default","version":3,"info":{"status":"deployed"},
		"chart":{"metadata":{"name":"tp-core-instance","version":"0.2.0","appVersion":"v0.2.0"}},
		"config":{"name":"edge","pipelineDefaults":{"image":"mirror/fluent-bit:4"}}}`
	r, err := decodeRelease(helmEncode(t, js))
	if err != nil {
		t.Fatal(err)
	}
	if r.Name != "core" || r.Namespace != "default" || r.Revision != 3 || r.Status != "deployed" || r.Chart != "0.2.0" || r.AppVersion != "v0.2.0" {
		t.Fatalf("release = %+v", r)
	}
	if r.Values["name"] != "edge" {
		t.Fatalf("values = %v", r.Values)
	}
	if _, err := decodeRelease([]byte("not base64!")); err == nil {
		t.Fatal("garbage accepted")
	}
	rels := []*Release{{Revision: 2}, {Revision: 5}, {Revision: 4}}
	if n := newest(rels); n.Revision != 5 {
		t.Fatalf("newest = %d", n.Revision)
	}
}
