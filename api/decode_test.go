package api

import (
	"errors"
	"strings"
	"testing"

	"github.com/walletauth/walletauth/errs"
)

// Decode takes exactly one JSON value and says what is wrong otherwise.
func TestDecode(t *testing.T) {
	type body struct {
		Name  string `json:"name"`
		Count int    `json:"count"`
	}
	for _, tc := range []struct {
		in, wantMsg string // wantMsg "": no error
		want        body
	}{
		{in: `{"name":"a","count":2}`, want: body{Name: "a", Count: 2}},
		{in: " \n{\"name\":\"a\"}\t ", want: body{Name: "a"}},
		{in: `{"name":"a","extra":[1,{"x":null}]}`, want: body{Name: "a"}},
		{in: ``, wantMsg: "the request body is empty"},
		{in: `   `, wantMsg: "the request body is empty"},
		{in: `{"name":"a"} {"name":"b"}`, wantMsg: "more than one JSON value"},
		{in: `{"name":"a"} x`, wantMsg: "more than one JSON value"},
		{in: `{"name":"a"}]`, wantMsg: "trailing data"},
		{in: `{"count":"2"}`, wantMsg: `field "count" has the wrong type`},
		{in: `{"name":`, wantMsg: "not valid JSON"},
		{in: `[1]`, wantMsg: "not valid JSON"},
	} {
		var got body
		err := Decode([]byte(tc.in), &got)
		if tc.wantMsg == "" {
			if err != nil || got != tc.want {
				t.Errorf("Decode(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			}
			continue
		}
		var e *errs.Error
		if !errors.As(err, &e) || !errors.Is(err, ErrInvalidJSON) || !strings.Contains(e.Message, tc.wantMsg) {
			t.Errorf("Decode(%q) = %v; want invalid_json saying %q", tc.in, err, tc.wantMsg)
		}
	}
}

// Decode refuses strings that would not decode to the text they spell, and
// takes every other string, escaped or not, as it is.
func TestDecodeText(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" : refused
	}{
		{in: `{"name":"Ärger 😀"}`, want: "Ärger 😀"},
		{in: `{"name":"\u00c4rger \ud83d\ude00"}`, want: "Ärger 😀"},
		{in: `{"name":"\uD83D\uDE00"}`, want: "😀"},
		{in: `{"name":"\ufffd"}`, want: "\ufffd"},
		{in: `{"name":"\\u0000"}`, want: `\u0000`},
		{in: `{"name":"\\ud800"}`, want: `\ud800`},
		{in: `{"name":"a\\"}`, want: `a\`},
		{in: `{"name":"\"\ud800\udc00\""}`, want: "\"\U00010000\""},
		{in: `{"name":"\u0000"}`},
		{in: `{"name":"a\u0000"}`},
		{in: `{"name":"\ud800"}`},
		{in: `{"name":"\udfff"}`},
		{in: `{"name":"\ud800\u0041"}`},
		{in: `{"name":"\ud800\ud800\udc00"}`},
		{in: `{"name":"\udbffx"}`},
		{in: `{"name":"\ud800\\udc00"}`},
		{in: `{"name":"ok","other":"\ud800"}`},
		{in: `{"\u0000":"x"}`},
		{in: "{\"name\":\"a\xffb\"}"},
		{in: "{\"name\":\"a\xc3\x28\"}"},
		{in: "{\"name\":\"\xed\xa0\x80\"}"}, // a surrogate encoded in UTF-8
		{in: "{\"other\":\"\xe2\x82\",\"name\":\"x\"}"},
	} {
		var got struct {
			Name string `json:"name"`
		}
		err := Decode([]byte(tc.in), &got)
		if tc.want != "" {
			if err != nil || got.Name != tc.want {
				t.Errorf("Decode(%q) = %q, %v; want %q", tc.in, got.Name, err, tc.want)
			}
			continue
		}
		if !errors.Is(err, ErrInvalidJSON) {
			t.Errorf("Decode(%q) = %q, %v; want invalid_json", tc.in, got.Name, err)
		}
	}
}
