package node

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The package doc lists the same routes as Routes (the README points to serve --help, which
// prints RouteTable).
func TestRoutesAreListedOnce(t *testing.T) {
	var want []string
	for _, r := range Routes {
		want = append(want, r.Method+" "+r.Path)
	}
	sort.Strings(want)
	line := regexp.MustCompile(`(?m)^(?://\t)?\|? ?` + "`?" + `(GET|PUT|POST|DELETE) +` + "`?" + `(/[^ ` + "`" + `|]*)`)
	for _, f := range []string{"doc.go"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		for _, m := range line.FindAllStringSubmatch(string(b), -1) {
			seen[m[1]+" "+strings.ReplaceAll(strings.ReplaceAll(m[2], "MAP", "{map}"), "KEY", "{key}")] = true
		}
		var got []string
		for r := range seen {
			got = append(got, r)
		}
		sort.Strings(got)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s lists the routes\n%s\nwant (node.Routes)\n%s", f, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}
