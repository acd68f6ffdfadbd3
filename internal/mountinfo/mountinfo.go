// Package mountinfo reads /proc/<pid>/mountinfo (proc(5)).
package mountinfo

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Mount is one line of /proc/self/mountinfo.
type Mount struct {
	Root       string // root of the mount within its file system
	MountPoint string
	FSType     string
	SuperOpts  []string
}

// Parse reads /proc/<pid>/mountinfo (proc(5)): the fields before
// " - " are id, parent, major:minor, root, mount point, options and optional
// fields; after it come fs type, source and super options.
func Parse(b []byte) ([]Mount, error) {
	var out []Mount
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		pre, post, ok := strings.Cut(line, " - ")
		if !ok {
			return nil, fmt.Errorf("mountinfo line %d: no ' - ' separator", n)
		}
		pf, qf := strings.Fields(pre), strings.Fields(post)
		if len(pf) < 6 || len(qf) < 1 {
			return nil, fmt.Errorf("mountinfo line %d: too few fields", n)
		}
		m := Mount{Root: Unescape(pf[3]), MountPoint: Unescape(pf[4]), FSType: qf[0]}
		if len(qf) >= 3 {
			m.SuperOpts = strings.Split(qf[2], ",")
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("scan mountinfo: %w", err)
	}
	return out, nil
}

// Unescape undoes the octal escapes (\040 for a space) of mountinfo.
func Unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
