package explorer

import (
	"bytes"
	"embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"time"
)

//go:embed templates
var templateFiles embed.FS

// pages holds one template set per page, each with the shared layout.
type pages struct {
	sets map[string]*template.Template
}

var pageNames = []string{"health", "streams", "stream", "log", "event", "graph", "tail", "projections", "error"}

func newPages(cfg config) *pages {
	funcs := template.FuncMap{
		"title": func() string { return cfg.title },
		"base":  func() string { return cfg.base },
		"link":  func(path string, kv ...any) string { return makeLink(cfg.base, path, kv...) },
		"eventURL": func(ref any) string {
			s, _ := ref.(string)
			if n, ok := ref.(uint64); ok {
				s = itoa(n)
			}
			return cfg.base + "/event/" + url.PathEscape(s)
		},
		"bytes": humanBytes,
		"dur":   func(d time.Duration) string { return d.Round(time.Millisecond / 10).String() },
	}
	p := &pages{sets: make(map[string]*template.Template)}
	for _, n := range pageNames {
		p.sets[n] = template.Must(template.New(n).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+n+".html"))
	}
	return p
}

// errorPage is the model of the error page.
type errorPage struct {
	Status  int
	Message string
}

// render writes the page tmpl of v, or the error page of err.
func (e *Explorer) render(w http.ResponseWriter, r *http.Request, tmpl string, v any, err error) {
	status := http.StatusOK
	if err != nil {
		status = statusOf(err)
		tmpl, v = "error", &errorPage{Status: status, Message: err.Error()}
	}
	var b bytes.Buffer
	if err := e.pages.sets[tmpl].ExecuteTemplate(&b, "layout", v); err != nil {
		http.Error(w, "render "+tmpl+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

// writeJSON writes v, or {"error": ...} with the status of err.
func writeJSON(w http.ResponseWriter, v any, err error) {
	status := http.StatusOK
	if err != nil {
		status = statusOf(err)
		v = map[string]string{"error": err.Error()}
	}
	b, merr := json.MarshalIndent(v, "", "  ")
	if merr != nil {
		http.Error(w, merr.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
