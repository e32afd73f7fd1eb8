package mail

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"os"
	"path"
	"strings"
	texttemplate "text/template"
)

// The kinds of mail the service sends, each a template pair.
const (
	KindLoginCode     = "login_code"
	KindPasswordReset = "password_reset"
	KindVerifyEmail   = "verify_email"
)

// Kinds lists every kind a language must provide.
var kinds = []string{KindLoginCode, KindPasswordReset, KindVerifyEmail}

// DefaultLanguage is used when the user's language has no translation.
const DefaultLanguage = "en"

//go:embed templates
var embedded embed.FS

// Data is what a template is given.
type Data struct {
	Code    string // the six digits
	Email   string // the address the mail goes to
	Minutes int    // how long the code is valid
	Subject string // set for the HTML template: the rendered subject
}

// Templates renders mails: templates/<lang>/<kind>.txt (text/template
// defining "subject" and "text") and <kind>.html (html/template, optional),
// embedded in the binary, each replaceable and new languages addable from
// an operator's folder of the same layout.
type Templates struct {
	text map[string]*texttemplate.Template // lang/kind
	html map[string]*htmltemplate.Template
}

// LoadTemplates parses the embedded templates and then those of dir (none
// when dir is empty), which replace the embedded ones of the same path.
// Every template is parsed here: a mistake fails the start, not a mail.
func LoadTemplates(dir string) (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	sub, err := fs.Sub(embedded, "templates")
	if err != nil {
		return nil, fmt.Errorf("mail: templates: %w", err)
	}
	if err := t.load(sub, "embedded"); err != nil {
		return nil, err
	}
	if dir != "" {
		st, err := os.Stat(dir)
		if err != nil {
			return nil, fmt.Errorf("mail: templates folder: %w", err)
		}
		if !st.IsDir() {
			return nil, fmt.Errorf("mail: templates folder %s is not a folder", dir)
		}
		if err := t.load(os.DirFS(dir), dir); err != nil {
			return nil, err
		}
	}
	for key := range t.text {
		lang := strings.SplitN(key, "/", 2)[0]
		for _, k := range kinds {
			if t.text[lang+"/"+k] == nil {
				return nil, fmt.Errorf("mail: templates: language %s has no %s.txt", lang, k)
			}
		}
	}
	return t, nil
}

func (t *Templates) load(fsys fs.FS, where string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("mail: templates in %s: %w", where, err)
		}
		if d.IsDir() {
			return nil
		}
		dir, file := path.Split(p)
		lang := strings.ToLower(strings.Trim(dir, "/"))
		if lang == "" || strings.Contains(lang, "/") {
			return nil // only <lang>/<file>
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("mail: templates in %s: %w", where, err)
		}
		switch {
		case strings.HasSuffix(file, ".txt"):
			kind := strings.TrimSuffix(file, ".txt")
			tt, err := texttemplate.New(kind).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return fmt.Errorf("mail: template %s in %s: %w", p, where, err)
			}
			if tt.Lookup("subject") == nil || tt.Lookup("text") == nil {
				return fmt.Errorf("mail: template %s in %s must define \"subject\" and \"text\"", p, where)
			}
			t.text[lang+"/"+kind] = tt
		case strings.HasSuffix(file, ".html"):
			kind := strings.TrimSuffix(file, ".html")
			ht, err := htmltemplate.New(kind).Option("missingkey=error").Parse(string(b))
			if err != nil {
				return fmt.Errorf("mail: template %s in %s: %w", p, where, err)
			}
			t.html[lang+"/"+kind] = ht
		}
		return nil
	})
}

// Language returns the translation used for a user's language tag: the tag
// itself (pt-br), else its base language (pt), else English.
func (t *Templates) Language(tag string) string {
	tag = strings.ToLower(strings.TrimSpace(tag))
	for tag != "" {
		if t.text[tag+"/"+KindLoginCode] != nil {
			return tag
		}
		i := strings.LastIndex(tag, "-")
		if i < 0 {
			break
		}
		tag = tag[:i]
	}
	return DefaultLanguage
}

// Render makes the mail of kind to d.Email in the user's language.
func (t *Templates) Render(kind, language string, d Data) (Message, error) {
	lang := t.Language(language)
	tt := t.text[lang+"/"+kind]
	if tt == nil {
		return Message{}, fmt.Errorf("mail: no template %s/%s", lang, kind)
	}
	var subj, text bytes.Buffer
	if err := tt.ExecuteTemplate(&subj, "subject", d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s/%s subject: %w", lang, kind, err)
	}
	if err := tt.ExecuteTemplate(&text, "text", d); err != nil {
		return Message{}, fmt.Errorf("mail: render %s/%s text: %w", lang, kind, err)
	}
	m := Message{Kind: kind, To: d.Email, Subject: strings.TrimSpace(subj.String()), Text: strings.TrimLeft(text.String(), "\n")}
	if strings.ContainsAny(m.Subject, "\r\n") {
		return Message{}, errors.New("mail: a subject must be one line")
	}
	if ht := t.html[lang+"/"+kind]; ht != nil {
		d.Subject = m.Subject
		var h bytes.Buffer
		if err := ht.Execute(&h, d); err != nil {
			return Message{}, fmt.Errorf("mail: render %s/%s html: %w", lang, kind, err)
		}
		m.HTML = h.String()
	}
	return m, nil
}
