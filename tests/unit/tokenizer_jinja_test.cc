// The Jinja interpreter behind chat templates (src/tokenizer/jinja/), feature by feature. The
// expected strings are what Python's jinja2 renders for the same template and context in
// transformers' environment (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks,
// loopcontrols, json.dumps tojson); the "PlainEnvironment" group turns trim/lstrip off.
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "test_util.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/jinja/hf_chat.h"
#include "tokenizer/jinja/template.h"

namespace msi {
namespace {

using jinja::Template;
using nlohmann::ordered_json;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const ordered_json& context() {
  static const ordered_json ctx = ordered_json::parse(R"J({
    "messages": [
      {"role": "system", "content": "Be brief."},
      {"role": "user", "content": "Hi"},
      {"role": "assistant", "content": "Hello!",
       "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"b": 1, "a": [1.5, null, true]}}}]}],
    "d": {"z": 1, "a": [1, "x"], "n": null},
    "s": "héllo wörld",
    "x": [3, 1, 2],
    "e": [],
    "t": "  pad  "})J");
  return ctx;
}

jinja::Options options(bool hf) {
  jinja::Options o;
  o.trim_blocks = hf;
  o.lstrip_blocks = hf;
  return o;
}

struct Case {
  const char* source;
  const char* expected;
};

void check_cases(bool hf, std::initializer_list<Case> cases) {
  for (const Case& c : cases) {
    SCOPED_TRACE(c.source);
    auto t = Template::parse(c.source, options(hf));
    ASSERT_TRUE(t.is_ok()) << t.status().to_string();
    Result<std::string> out = (*t)->render(context());
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
    EXPECT_EQ(*out, c.expected);
  }
}

// Renders `source` in transformers' environment (raise_exception included); the error message
// if it fails.
Result<std::string> render_hf(const std::string& source, const ordered_json& ctx = context()) {
  MSI_ASSIGN_OR_RETURN(auto t, Template::parse(source, jinja::hf_chat_options()));
  jinja::HfChatRequest request;
  request.messages = ctx["messages"];
  request.extra_context = ctx;
  request.extra_context.erase("messages");
  return jinja::render_hf_chat(*t, ordered_json::object(), request);
}

TEST(JinjaWhitespace, MatchesJinja2) {
  check_cases(true, {
                        {R"J(a
  {%- if true -%}
    b
  {%- endif -%}
  c)J",
                         "abc"},
                        {R"J({% for i in x %}
    {{ i }}
{% endfor %})J",
                         "    3\n    1\n    2\n"},
                        {R"J({% for i in x -%}
    {{ i }}
{%- endfor %})J",
                         "312"},
                        {R"J(  {# comment #}
  x
    {#- c2 -#}   
  y)J",
                         "  xy"},
                        {R"J({%- for i in x %}
  {%- if i == 1 %}
one
  {% else %}
other
  {%- endif %}
{% endfor %})J",
                         "otherone\nother"},
                        {R"J(text {% if true %}   inline {% endif %} end)J", "text    inline  end"},
                        {"\t{% if true %}tab{% endif %}", "tab"},
                        {R"J(x {{ 1 }}
  {{ 2 }}
 {{- 3 -}}
  z)J",
                         "x 1\n  23z"},
                        {R"J({% if true %}
{% endif %})J",
                         ""},
                        {R"J({%- set v = 1 -%}
  {{ v }}

)J",
                         "1\n"},
                        {R"J({% raw -%}
  {{ a }}
  {%- endraw %}
b)J",
                         "{{ a }}b"},
                        {R"J(  {% raw %}X{% endraw %})J", "X"},
                        {R"J({% raw %}
{% if %}{{ }}{# #}
{% endraw %}
z)J",
                         "\n{% if %}{{ }}{# #}\nz"},
                        {R"J({%+ if true %}
  keep{% endif %})J",
                         "  keep"},
                        {R"J(   {%+ if true %}y{% endif %})J", "   y"},
                        {R"J({% if true %}a{% endif +%}
b)J",
                         "a\nb"},
                        {R"J({% if true %}a{% endif -%}

   b)J",
                         "ab"},
                        {R"J(<{{- ' ' -}}>)J", "< >"},
                        {"one\r\ntwo\rthree\n", "one\ntwo\nthree"},
                        {R"J(keep one trailing newline only

)J",
                         "keep one trailing newline only\n"},
                        {R"J({{ {'a': {'b': 1}} }}{{ {'a':1}['a'] }})J", "{'a': {'b': 1}}1"},
                    });
}

TEST(JinjaWhitespacePlainEnvironment, MatchesJinja2) {
  check_cases(false, {
                         {R"J({% for i in x %}
    {{ i }}
{% endfor %})J",
                          "\n    3\n\n    1\n\n    2\n"},
                         {R"J(  {% if true %}
  a
  {% endif %}
)J",
                          "  \n  a\n  "},
                         {R"J(  {# c #}
x)J",
                          "  \nx"},
                     });
}

TEST(JinjaLiterals, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({{ 'a' }}{{ "b" }}{{ 'it''s' }}{{ 'x' "y" }})J", "abitsxy"},
          {R"J({{ "a\tb\x41\u00e9\q\\" }}|{{ 'q\'uote' }}|{{ "\"" }}|{{ '\101' }})J",
           "a\tbAé\\q\\|q'uote|\"|A"},
          {R"J({{ 42 }} {{ -7 }} {{ 1_000 }} {{ 0x1F }} {{ 0b101 }} {{ 0o17 }} {{ 1.5 }} {{ 1e3 }} {{ 2.5E-3 }})J",
           "42 -7 1000 31 5 15 1.5 1000.0 0.0025"},
          {R"J({{ true }} {{ True }} {{ false }} {{ none }} {{ None }})J",
           "True True False None None"},
          {R"J({{ [1, 'a', 1.0, none, true, (1,), (), {'k': "it's"}, ["q\""]] }})J",
           "[1, 'a', 1.0, None, True, (1,), (), {'k': \"it's\"}, ['q\"']]"},
          {R"J({{ (1, 2) }} {{ {'a': 1, 'b': [1, 'x']} }} {{ [] }} {{ {} }} {{ 'a', 'b' }})J",
           "(1, 2) {'a': 1, 'b': [1, 'x']} [] {} ('a', 'b')"},
          {R"J({{ 1e-5 }} {{ 1e16 }} {{ 1e15 }} {{ 0.1 + 0.2 }} {{ 1/3 }} {{ 123456789012345678.0 }} {{ 1.5e-7 }} {{ 100.0 }} {{ -0.0 }} {{ 1e300 * 1e10 }})J",
           "1e-05 1e+16 1000000000000000.0 0.30000000000000004 0.3333333333333333 "
           "1.2345678901234568e+17 1.5e-07 100.0 -0.0 inf"},
          {R"J({{ d }} {{ x }} {{ s }} {{ d.n }} {{ u }}|{{ [u] }})J",
           "{'z': 1, 'a': [1, 'x'], 'n': None} [3, 1, 2] héllo wörld None |[Undefined]"},
          {R"J({{ ['\n', '\t\x01', '\u00e9\u200b', "'"] }})J",
           "['\\n', '\\t\\x01', 'é\\u200b', \"'\"]"},
      });
}

TEST(JinjaOperators, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({{ 10/4 }} {{ 7//2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7 % -3 }} {{ 2**3**2 }} {{ 2 ** -1 }} {{ 10.0 // 3 }} {{ 5.5 % 2 }} {{ 2 ** 0.5 }} {{ 3 / 1 }})J",
           "2.5 3 -4 2 -2 64 0.5 3.0 1.5 1.4142135623730951 3.0"},
          {R"J({{ 1 + 2 * 3 - 4 / 2 }} {{ (1 + 2) * 3 }} {{ 1 + 1.0 }} {{ true + 1 }} {{ 'ab' * 2 }} {{ [1] * 2 }} {{ 2 * 'c' }} {{ [1] + [2] }})J",
           "5.0 9 2.0 2 abab [1, 1] cc [1, 2]"},
          {R"J({{ 'a' ~ none ~ 1.5 ~ u ~ [1] }} {{ 'a' + 'b' }})J", "aNone1.5[1] ab"},
          {R"J({{ 1 == 1.0 }} {{ 'a' != 'b' }} {{ 1 < 2 < 3 }} {{ 3 > 2 > 2 }} {{ [1,2] == [1,2] }} {{ (1,2) == [1,2] }} {{ {'a':1} == {'a':1.0} }} {{ [1, 2] < [1, 3] }} {{ 'b' >= 'a' }} {{ u == u }} {{ none == none }})J",
           "True True True False True False True True True True True"},
          {R"J({{ 'a' in ['a'] }} {{ 'z' not in 'abc' }} {{ 'z' in d }} {{ 'bc' in 'abc' }} {{ 1 in d.a }} {{ 'a' in u }} {{ not 'x' in 'y' }})J",
           "True True True True True False True"},
          {R"J({{ 1 and 2 }} {{ 0 and 2 }} {{ 0 or 'a' }} {{ '' or [] }} {{ none or u }}|{{ not 0 }} {{ not 'a' }} {{ 0 or none and 1 }})J",
           "2 0 a [] |True False None"},
          {R"J({{ -1 }} {{ - 1.5 }} {{ -x[0] }} {{ +3 }} {{ -(3) }} {{ -2 ** 2 }} {{ not true == false }})J",
           "-1 -1.5 -3 3 -3 4 True"},
          {R"J({{ 'yes' if x else 'no' }} {{ 'yes' if e else 'no' }} {{ 'a' if false }}|{{ ('a' if false) is defined }} {{ 1 if 0 else 2 if 0 else 3 }})J",
           "yes no |False 3"},
          {R"J({{ '%s-%d' % ('a', 3) }} {{ '%05.2f' % 3.14159 }} {{ '%r' % 'q' }} {{ '%(k)s' % {'k': 'v'} }})J",
           "a-3 03.14 'q' v"},
      });
}

TEST(JinjaAccess, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({{ x[0] }} {{ x[-1] }} {{ x[5] }}|{{ x.0 }} {{ d['z'] }} {{ d.a.1 }} {{ s[0] }} {{ s[-1] }} {{ d['missing'] }}|{{ d.missing }}|)J",
           "3 2 |3 1 x h d ||"},
          {R"J({{ x[1:] }} {{ x[:-1] }} {{ x[::2] }} {{ x[::-1] }} {{ x[-2:] }} {{ s[1:-1] }} {{ x[5:] }} {{ s[::-1] }})J",
           "[1, 2] [3, 1] [3, 2] [2, 1, 3] [1, 2] éllo wörl [] dlröw olléh"},
          {R"J({{ messages[0].role }} {{ messages[-1]['content'] }} {{ messages[2].tool_calls[0].function.name }} {{ messages[2].tool_calls[0]['function']['arguments'] }})J",
           "system Hello! f {'b': 1, 'a': [1.5, None, True]}"},
          {R"J({{ d.items is callable }}|{{ d['items'] is defined }}|{{ d.get('z') }} {{ d.get('q', 5) }} {{ d.get('q') }})J",
           "True|True|1 5 None"},
          {R"J({{ s.foo is defined }} {{ x.foo is defined }} {{ d.missing is defined }} {{ u is defined }})J",
           "False False False False"},
          {R"J({% for m in messages[::-1] %}{{ m.role }},{% endfor %}{% for m in messages[1:] %}{{ loop.index0 }}{% endfor %})J",
           "assistant,user,system,01"},
      });
}

TEST(JinjaStatements, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({% if true %}a{% elif false %}b{% else %}c{% endif %}{% if false %}a{% elif true %}b{% else %}c{% endif %}{% if 0 %}a{% elif '' %}b{% else %}c{% endif %})J",
           "abc"},
          {R"J({% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %})J",
           "z=1;a=[1, 'x'];n=None;"},
          {R"J({% for k in d %}{{ k }}{% else %}empty{% endfor %}{% for k in e %}x{% else %}empty{% endfor %}{% for c in 'ab' %}{{ c }}{% endfor %})J",
           "zanemptyab"},
          {R"J({% for i in range(10) if i is odd %}{{ loop.index }}:{{ i }}/{{ loop.length }}{% if not loop.last %},{% endif %}{% endfor %})J",
           "1:1/5,2:3/5,3:5/5,4:7/5,5:9/5"},
          {R"J({% for i in x %}{% continue %}{% else %}else runs: no iteration reached the end{% endfor %}|{% for i in x %}{{ i }}{% if i == 1 %}{% break %}{% endif %}{% else %}no{% endfor %})J",
           "else runs: no iteration reached the end|31"},
          {R"J({% for i in range(5) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %})J",
           "02"},
          {R"J({% for a in x %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.previtem }}{{ loop.nextitem }}|{% endfor %})J",
           "1032TrueFalse31|2121FalseFalse332|3210FalseTrue31|"},
          {R"J({% for a in [1, 1, 2, 2, 1] %}{% if loop.changed(a) %}{{ a }}{% endif %}{% endfor %})J",
           "121"},
          {R"J({% for a in x %}{{ loop.cycle('odd', 'even') }}{% for b in x %}{{ loop.index }}{% endfor %}{{ loop.index }};{% endfor %})J",
           "odd1231;even1232;odd1233;"},
          {R"J({% for i in range(3) %}{% if i == 1 %}{% set v = 5 %}{% endif %}{{ v }},{% endfor %}{{ v }})J",
           ",5,,"},
          {R"J({% set y = 1 %}{% for i in range(3) %}{{ y }}{% set y = y + 1 %}{{ y }}{% endfor %}{{ y }})J",
           "1212121"},
          {R"J({% if true %}{% set z = 3 %}{% endif %}{{ z }})J", "3"},
          {R"J({% set ns = namespace(found=false, n=0) %}{% for m in x %}{% set ns.n = ns.n + m %}{% if m == 1 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.found }} {{ ns.n }} {{ ns }})J",
           "True 6 <Namespace {'found': True, 'n': 6}>"},
          {R"J({% set a, b = 1, 2 %}{{ a }}{{ b }}{% set t = (1, 2) %}{{ t }}{% set c = 1, %}{{ c }}{% for p, q in [(1, 2), [3, 4]] %}{{ p + q }}{% endfor %})J",
           "12(1, 2)(1,)37"},
          {R"J({% set v %}hello {{ s }}{% endset %}[{{ v }}]{% set w | upper %}abc{% endset %}{{ w }})J",
           "[hello héllo wörld]ABC"},
          {R"J({% filter upper %}abc {{ s }}{% endfilter %}{% filter replace('a', 'b') | upper %}aa{% endfilter %})J",
           "ABC HÉLLO WÖRLDBB"},
          {R"J({% macro f(a, b=2) %}[{{ a }}{{ b }}]{% endmacro %}{{ f(1) }}{{ f(1, 3) }}{{ f(b=4, a=0) }}{{ f() }})J",
           "[12][13][04][2]"},
          {R"J({% macro f(a) %}[{{ a }}{{ varargs }}{{ kwargs }}]{% endmacro %}{{ f(1, 3, 4, k=5) }})J",
           "[1(3, 4){'k': 5}]"},
          {R"J({% macro m(a) %}<{{ a }}|{{ caller() }}>{% endmacro %}{% call m(1) %}inner{% endcall %})J",
           "<1|inner>"},
          {R"J({% macro m(a) %}{% for i in a %}{{ caller(i) }}{% endfor %}{% endmacro %}{% call(v) m([1,2]) %}[{{ v }}]{% endcall %})J",
           "[1][2]"},
          {R"J({% macro outer() %}{% macro inner(q) %}({{ q }}){% endmacro %}{{ inner(1) }}{{ inner(2) }}{% endmacro %}{{ outer() }})J",
           "(1)(2)"},
          {R"J({% macro rec(n) %}{{ n }}{% if n > 0 %}{{ rec(n - 1) }}{% endif %}{% endmacro %}{{ rec(3) }})J",
           "3210"},
          {R"J({% with a = 1, b = 2 %}{{ a + b }}{% endwith %}{{ a }})J", "3"},
          {R"J({% print 'printed' %} {{ x | length }})J", "printed 3"},
      });
}

TEST(JinjaFilters, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({{ d|length }} {{ x|count }} {{ s|length }} {{ u|length }} {{ x|first }} {{ x|last }} {{ s|first }} {{ e|first }}|{{ d|first }} {{ d|list }} {{ 'ab'|list }} {{ u|list }})J",
           "3 3 11 0 3 2 h |z ['z', 'a', 'n'] ['a', 'b'] []"},
          {R"J({{ x|join }} {{ x|join(', ') }} {{ [{'n':'a'},{'n':'b'}]|join(',', attribute='n') }} {{ u|default('dft') }} {{ ''|default('dft') }} {{ ''|default('dft', true) }} {{ none|d('z', true) }} {{ none|default('z') }})J",
           "312 3, 1, 2 a,b dft  dft z None"},
          {R"J({{ messages|selectattr('role', 'equalto', 'user')|map(attribute='content')|list }} {{ messages|rejectattr('tool_calls')|map(attribute='role')|join(',') }} {{ messages|selectattr('tool_calls', 'defined')|list|length }})J",
           "['Hi'] system,user 1"},
          {R"J({{ [1,2,3,4]|select('odd')|list }} {{ [1,2,3,4]|reject('odd')|list }} {{ [1,2,3]|map('string')|list }} {{ ['a','b']|map('upper')|join }} {{ [1, 0, 2]|select|list }} {{ messages|map(attribute='nope', default='-')|join }})J",
           "[1, 3] [2, 4] ['1', '2', '3'] AB [1, 2] ---"},
          {R"J({{ (x|select('odd')) is iterable }} {{ x|select('odd') is sequence }} {% if e|select %}generators are truthy{% endif %})J",
           "True False generators are truthy"},
          {R"J({{ [3,1,2]|sort }} {{ [3,1,2]|sort(reverse=true) }} {{ ['b','A','a']|sort }} {{ ['b','A','a']|sort(case_sensitive=true) }} {{ [{'a':2},{'a':1}]|sort(attribute='a') }} {{ d|dictsort }} {{ {'b':1,'a':2}|dictsort(by='value') }})J",
           "[1, 2, 3] [3, 2, 1] ['A', 'a', 'b'] ['A', 'a', 'b'] [{'a': 1}, {'a': 2}] [('a', [1, "
           "'x']), ('n', None), ('z', 1)] [('b', 1), ('a', 2)]"},
          {R"J({{ {'b':1,'a':2}|items|list }} {{ ['b','A','a','b']|unique|list }} {{ [3,1,2]|min }} {{ [3,1,2]|max }} {{ ['b','A']|max }} {{ [1,2]|sum(start=10) }} {{ [{'v':1},{'v':2}]|sum(attribute='v') }})J",
           "[('b', 1), ('a', 2)] ['b', 'A'] 1 3 b 13 3"},
          {R"J({{ 'abc'|upper }} {{ 'ABC'|lower }} {{ t|trim }}| {{ 'xxaxx'|trim('x') }} {{ 'aXbX'|replace('X', 'y') }} {{ 'aaa'|replace('a', 'b', 2) }} {{ 'hello'|reverse }} {{ x|reverse|list }} {{ 'abc'|center(9) }}| {{ 'a b c'|wordcount }})J",
           "ABC abc pad| a ayby bba olleh [2, 1, 3]    abc   | 3"},
          {R"J({{ 'hello world'|title }} {{ 'hELLO wORLD'|capitalize }} {{ 'foo-bar (baz)'|title }} {{ s|title }} {{ s|upper }})J",
           "Hello World Hello world Foo-Bar (Baz) Héllo Wörld HÉLLO WÖRLD"},
          {R"J({{ '5'|int + 1 }} {{ '5.5'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '1.5'|float }} {{ 3|float }} {{ 'x'|float }} {{ -3|abs }} {{ 3.7|int }} {{ '0x1F'|int(base=16) }} {{ true|int }} {{ ' 42 '|int }})J",
           "6 5 0 7 1.5 3.0 0.0 3 3 31 1 42"},
          {R"J({{ (2.5)|round }} {{ 3|round }} {{ 0.125|round(2) }} {{ -2.5|round }} {{ 2.675|round(2) }} {{ 2.1|round(0, 'ceil') }} {{ 2.9|round(method='floor') }})J",
           "2.0 3 0.12 -2.0 2.67 3.0 2.0"},
          {R"J({{ 42|string }} {{ [1]|string }} {{ none|string }} {{ 1.0|string + 'x' }} {{ 'a<b>&"\''|e }} {{ '<x>'|safe }})J",
           "42 [1] None 1.0x a&lt;b&gt;&amp;&#34;&#39; <x>"},
          {R"J({{ 'l1\nl2\n\nl4'|indent }}|{{ 'l1\nl2'|indent(2, true) }}|{{ 'a\n\nb'|indent(2, blank=true) }}|{{ 'a\nb'|indent('>>') }})J",
           "l1\n    l2\n\n    l4|  l1\n  l2|a\n  \n  b|a\n>>b"},
          {R"J({{ 'hello world this is long'|truncate(12) }}|{{ 'hello world this is long'|truncate(12, true) }}|{{ 'short'|truncate(12) }})J",
           "hello...|hello wor...|short"},
          {R"J({{ '%s-%d'|format('a', 3) }} {{ '%(x)s'|format(x='y') }})J", "a-3 y"},
          {R"J({{ [1,2,3,4,5]|batch(2)|list }} {{ [1,2,3,4,5]|batch(2, 0)|list }} {{ [1,2,3,4,5]|slice(2)|list }})J",
           "[[1, 2], [3, 4], [5]] [[1, 2], [3, 4], [5, 0]] [[1, 2, 3], [4, 5]]"},
          {R"J({{ d|tojson }} {{ messages[2].tool_calls|tojson }} {{ s|tojson }} {{ 'q"\\\n\t\u0001'|tojson }} {{ [1.0, 1e-7, none, true]|tojson }})J",
           "{\"z\": 1, \"a\": [1, \"x\"], \"n\": null} [{\"type\": \"function\", \"function\": "
           "{\"name\": \"f\", \"arguments\": {\"b\": 1, \"a\": [1.5, null, true]}}}] \"héllo "
           "wörld\" \"q\\\"\\\\\\n\\t\\u0001\" [1.0, 1e-07, null, true]"},
          {R"J({{ d|tojson(indent=2) }}|{{ [1,[2,{}],[]]|tojson(indent=1) }}|{{ x|tojson(separators=(',', ':')) }}|{{ d|tojson(sort_keys=true) }}|{{ s|tojson(ensure_ascii=true) }})J",
           "{\n  \"z\": 1,\n  \"a\": [\n    1,\n    \"x\"\n  ],\n  \"n\": null\n}|[\n 1,\n [\n  "
           "2,\n  {}\n ],\n []\n]|[3,1,2]|{\"a\": [1, \"x\"], \"n\": null, \"z\": 1}|\"h\\u00e9llo "
           "w\\u00f6rld\""},
          {R"J({{ x|attr('count') is callable }} {{ d|attr('z') }}| {{ range(3)|list }} {{ range(1, 10, 3)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b=2) }} {{ namespace(d, c=3).c }})J",
           "True | [0, 1, 2] [1, 4, 7] [5, 3, 1] {'a': 1, 'b': 2} 3"},
          {R"J({% set j = joiner(', ') %}{% for i in x %}{{ j() }}{{ i }}{% endfor %})J",
           "3, 1, 2"},
      });
}

TEST(JinjaTests, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({{ none is none }} {{ 1 is number }} {{ true is number }} {{ 1.0 is float }} {{ 1 is integer }} {{ true is integer }} {{ 'a' is string }} {{ d is mapping }} {{ x is iterable }} {{ 'a' is iterable }} {{ 3 is iterable }} {{ x is sequence }} {{ d is sequence }} {{ u is sequence }})J",
           "True True True True True False True True True True False True True True"},
          {R"J({{ true is boolean }} {{ 1 is boolean }} {{ true is true }} {{ 1 is true }} {{ false is false }} {{ 0 is false }} {{ u is undefined }} {{ u is not defined }} {{ x is not none }})J",
           "True False True False True False True True True"},
          {R"J({{ 3 is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 9 is divisibleby(4) }} {{ 1 is eq 1 }} {{ 1 is equalto 2 }} {{ 2 is in [1,2] }} {{ 3 is gt 2 }} {{ 3 is lessthan 2 }} {{ 'A' is upper }} {{ 'a' is lower }} {{ 'upper' is filter }} {{ 'odd' is test }})J",
           "True True True False True False True True False True True True True"},
          {R"J({{ not u is defined }} {{ x is sameas x }} {{ 1 is ne 2 }} {{ 1 is ge 1 }} {{ 1 is le 0 }})J",
           "True True True True False"},
      });
}

TEST(JinjaMethods, MatchesJinja2) {
  check_cases(
      true,
      {
          {R"J({{ '  a  b '.strip() }}|{{ 'xxaxx'.strip('x') }}|{{ '\n\na\n'.lstrip('\n') }}|{{ 'a\n\n'.rstrip() }}|{{ 'a,b,c'.split(',', 1) }}|{{ ' a  b '.split() }}|{{ 'a b'.split(None) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ ' a b c '.rsplit(None, 1) }})J",
           "a  b|a|a\n|a|['a', 'b,c']|['a', 'b']|['a', 'b']|['a,b', 'c']|[' a b', 'c']"},
          {R"J({{ '<tool_response>x</tool_response>'.startswith('<tool_response>') }} {{ 'abc'.endswith('bc') }} {{ 'abc'.startswith(('x', 'a')) }} {{ 'abc'.find('c') }} {{ 'abc'.find('z') }} {{ 'aaa'.count('a') }} {{ 'a-b'.replace('-', '+') }} {{ 'Hello World'.lower() }} {{ 'hello world'.title() }} {{ 'hello'.capitalize() }})J",
           "True True True 2 -1 3 a+b hello world Hello World Hello"},
          {R"J({{ ', '.join(['a', 'b']) }} {{ '{} is {}'.format('x', 1) }} {{ '{0}{name}'.format('a', name='b') }} {{ 'abc'.upper() }} {{ ' x '.isspace() }} {{ '123'.isdigit() }} {{ 'ab'.isalpha() }} {{ 'Ab'.swapcase() }})J",
           "a, b x is 1 ab ABC False True True aB"},
          {R"J({{ d.keys()|list }} {{ d.values()|list }} {{ d.items()|list }} {{ d.get('a') }} {{ x.index(2) }} {{ x.count(1) }} {{ (1,2).count(1) }})J",
           "['z', 'a', 'n'] [1, [1, 'x'], None] [('z', 1), ('a', [1, 'x']), ('n', None)] [1, 'x'] "
           "2 1 1"},
          {R"J({{ s.split('l') }} {{ 'ß'.upper() }} {{ 'ÉCOLE'.lower() }} {{ 'éa'|title }} {{ '日本'|length }} {{ '日本'[1] }} {{ '日本' ~ 'x' }} {{ s.find('w') }})J",
           "['hé', '', 'o wör', 'd'] SS école Éa 2 本 日本x 6"},
          {R"J({{ 'a<think>b</think>\n\nc'.split('</think>')[-1].lstrip('\n') }}|{{ 'a<think>\nb\n</think>c'.split('</think>')[0].rstrip('\n').split('<think>')[-1].lstrip('\n') }})J",
           "c|b"},
          {R"J({{ 'a b c'.partition(' ') }} {{ 'abc'.removeprefix('a') }} {{ '7'.zfill(3) }} {{ 'ab'.ljust(4, '.') }}| {{ 'a\nb\r\nc'.splitlines() }})J",
           "('a', ' ', 'b c') bc 007 ab..| ['a', 'b', 'c']"},
      });
}

TEST(JinjaGeneration, RendersItsBodyInItsOwnScope) {
  // transformers' {% generation %} marks assistant text; rendering passes it through.
  Result<std::string> out =
      render_hf("{% generation %}gen {{ s }}{% set inside = 1 %}{% endgeneration %}[{{ inside }}]");
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "gen héllo wörld[]");
}

TEST(JinjaGlobals, CallablesFromTheCaller) {
  auto t = Template::parse("{{ greet('x', punct='!') }}{{ greet('y') }}");
  ASSERT_TRUE(t.is_ok());
  jinja::Variables globals;
  globals.emplace_back("greet", jinja::Value::callable(
                                    "greet", [](const jinja::CallArgs& a) -> Result<jinja::Value> {
                                      std::string s = "hi " + a.args.at(0).as_string();
                                      for (const auto& [k, v] : a.kwargs) {
                                        if (k == "punct") s += v.as_string();
                                      }
                                      return jinja::Value::string(s);
                                    }));
  Result<std::string> out = (*t)->render(ordered_json::object(), globals);
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "hi x!hi y");
}

TEST(JinjaGlobals, StrftimeNow) {
  Result<std::string> out = render_hf("{{ strftime_now('%Y') | length }}");
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "4");
}

TEST(JinjaContext, ObjectsKeepTheirKeyOrder) {
  auto t = Template::parse("{{ tool | tojson }} {% for k in tool %}{{ k }}{% endfor %}");
  ASSERT_TRUE(t.is_ok());
  auto ctx = ordered_json::parse(R"({"tool": {"type": "function", "name": "f", "a": 1}})");
  Result<std::string> ordered = (*t)->render(ctx);
  ASSERT_TRUE(ordered.is_ok()) << ordered.status().to_string();
  EXPECT_EQ(*ordered, R"({"type": "function", "name": "f", "a": 1} typenamea)");
  // nlohmann::json itself sorts keys: what Python would see for a sorted input.
  Result<std::string> sorted = (*t)->render(nlohmann::json(ctx));
  ASSERT_TRUE(sorted.is_ok());
  EXPECT_EQ(*sorted, R"({"a": 1, "name": "f", "type": "function"} anametype)");
}

TEST(JinjaContext, NumbersKeepIntOrFloat) {
  auto t = Template::parse("{{ a }} {{ b }} {{ c }} {{ a / 2 }} {{ [a, b, c] | tojson }}");
  ASSERT_TRUE(t.is_ok());
  Result<std::string> out = (*t)->render(ordered_json::parse(R"({"a": 3, "b": 3.0, "c": 1e-7})"));
  ASSERT_TRUE(out.is_ok());
  EXPECT_EQ(*out, "3 3.0 1e-07 1.5 [3, 3.0, 1e-07]");
}

TEST(JinjaErrors, SyntaxErrorsNameTheLine) {
  struct ErrorCase {
    const char* source;
    const char* message;
  };
  const ErrorCase cases[] = {
      {"line one\n{% for x in y %}\nno end",
       "line 3: Unexpected end of template. Jinja was looking for the "
       "following tags: 'endfor' or 'else'. The innermost block that needs "
       "to be closed is 'for'."},
      {"a\n\n{% frobnicate %}", "line 3: Encountered unknown tag 'frobnicate'."},
      {"{{ 1 +* 2 }}", "line 1: unexpected '*'"},
      {"\n{{ x $ }}", "line 2: unexpected char '$' at 6"},
      {"{% if x %}\n{% endfor %}",
       "line 2: Encountered unknown tag 'endfor'. Jinja was looking for the following "
       "tags: 'elif' or 'else' or 'endif'. The innermost block that needs to be closed "
       "is 'if'."},
      {"{% for x in y %}{% if x %}{% endfor %}",
       "line 1: Encountered unknown tag 'endfor'. You probably made a nesting mistake. Jinja is "
       "expecting this tag, "
       "but currently looking for 'elif' or 'else' or 'endif'. The innermost block that needs to "
       "be closed is 'if'."},
      {"{{ 'unterminated }}", "line 1: unexpected char \"'\" at 3"},
      {"{# never closed", "line 1: Missing end of comment tag"},
      {"{% break %}", "line 1: 'break' outside loop"},
      {"{{ (1, 2 }}", "line 1: unexpected '}', expected ')'"},
      {"{% macro f(a=1, b) %}{% endmacro %}",
       "line 1: non-default argument follows default argument"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.source);
    auto t = Template::parse(c.source, jinja::hf_chat_options());
    ASSERT_FALSE(t.is_ok());
    EXPECT_EQ(t.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(t.status().message(), c.message);
  }
}

TEST(JinjaErrors, RuntimeErrorsNameTheLine) {
  struct ErrorCase {
    const char* source;
    const char* message;
  };
  const ErrorCase cases[] = {
      {"ok\n{% if true %}\n  {{ raise_exception('Bad roles: ' ~ d.z) }}\n{% endif %}",
       "line 3: Bad roles: 1"},
      {"{{ u.foo }}", "line 1: 'u' is undefined"},
      {"\n{{ d.c.foo }}", "line 2: 'dict object' has no attribute 'c'"},
      {"{{ 'a' + u }}", "line 1: 'u' is undefined"},
      {"{{ 'a' + 1 }}", "line 1: can only concatenate str (not \"int\") to str"},
      {"{{ 1 < 'a' }}", "line 1: '<' not supported between instances of 'int' and 'str'"},
      {"{% for m in messages %}\n{{ m.content.nope() }}\n{% endfor %}",
       "line 2: 'str object' has no attribute 'nope'"},
      {"{{ x.append(4) }}", "line 1: access to attribute 'append' of 'list' object is unsafe."},
      {"{{ none.strip() }}", "line 1: 'None' has no attribute 'strip'"},
      {"{% set q = 1 %}{% set q.a = 2 %}",
       "line 1: Cannot assign attribute on non-namespace object"},
      {"{{ x | frobnicate }}", "line 1: No filter named 'frobnicate'."},
      {"{{ x is frobnicate }}", "line 1: No test named 'frobnicate'."},
      {"{{ 1 // 0 }}", "line 1: integer division or modulo by zero"},
      {"{{ u | tojson }}", "line 1: Object of type Undefined is not JSON serializable"},
      {"{% macro f(a) %}{% endmacro %}{{ f(1, 2) }}",
       "line 1: macro 'f' takes not more than 1 argument(s)"},
      {"{% set a, b = [1] %}", "line 1: not enough values to unpack (expected 2, got 1)"},
      {"{{ x[0:1:0] }}", "line 1: slice step cannot be zero"},
      {"{% macro r(n) %}{{ r(n + 1) }}{% endmacro %}\n{{ r(0) }}",
       "line 1: maximum recursion depth exceeded"},
      {"{{ [1] in d }}", "line 1: unhashable type: 'list'"},
      {"{{ 10 ** 20 }}",
       "line 1: integer overflow (Python ints are unbounded; msinfer's are 64-bit)"},
  };
  for (const ErrorCase& c : cases) {
    SCOPED_TRACE(c.source);
    Result<std::string> out = render_hf(c.source);
    ASSERT_FALSE(out.is_ok()) << *out;
    EXPECT_EQ(out.status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(out.status().message(), c.message);
  }
}

TEST(JinjaTemplate, ConcurrentRendersOfOneTemplate) {
  auto t = Template::parse(
      "{% set ns = namespace(n=0) %}{% for i in range(n) %}{% set ns.n = ns.n + i %}{% endfor %}{{ "
      "ns.n }}");
  ASSERT_TRUE(t.is_ok());
  std::vector<std::string> outs(8);
  std::vector<std::thread> threads;
  for (int k = 0; k < 8; ++k) {
    threads.emplace_back([&, k] {
      auto r = (*t)->render(ordered_json{{"n", 100 + k}});
      outs[k] = r.is_ok() ? *r : r.status().message();
    });
  }
  for (auto& th : threads) th.join();
  for (int k = 0; k < 8; ++k) EXPECT_EQ(outs[k], std::to_string((100 + k) * (99 + k) / 2));
}

// --- ChatTemplate::load -------------------------------------------------------------------

constexpr const char* kTinyTemplate =
    "{{ bos_token }}{% for m in messages %}[{{ m.role }}]{{ m.content }}{% endfor %}";

TEST(ChatTemplateLoad, FromChatTemplateJinja) {
  test::TempDir dir;
  dir.write("chat_template.jinja", kTinyTemplate);
  dir.write("tokenizer_config.json", R"({"bos_token": {"__type": "AddedToken", "content": "<B>"},
                                        "chat_template": "ignored: the .jinja file wins"})");
  auto chat = ChatTemplate::load(dir.path());
  ASSERT_TRUE(chat.is_ok()) << chat.status().to_string();
  EXPECT_EQ(chat->source(), kTinyTemplate);
  auto out = chat->render(nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])"), {});
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<B>[user]hi");
}

TEST(ChatTemplateLoad, FromTokenizerConfigString) {
  test::TempDir dir;
  dir.write(
      "tokenizer_config.json",
      ordered_json{{"bos_token", "<s>"}, {"eos_token", nullptr}, {"chat_template", kTinyTemplate}}
          .dump());
  auto chat = ChatTemplate::load(dir.path());
  ASSERT_TRUE(chat.is_ok()) << chat.status().to_string();
  auto out = chat->render(nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])"), {});
  ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  EXPECT_EQ(*out, "<s>[user]hi");
}

TEST(ChatTemplateLoad, FromTokenizerConfigNamedTemplates) {
  test::TempDir dir;
  ordered_json list = ordered_json::array();
  list.push_back({{"name", "tool_use"}, {"template", "tools!"}});
  list.push_back({{"name", "default"}, {"template", kTinyTemplate}});
  dir.write("tokenizer_config.json",
            ordered_json{{"bos_token", "<s>"}, {"chat_template", list}}.dump());
  auto chat = ChatTemplate::load(dir.path());
  ASSERT_TRUE(chat.is_ok()) << chat.status().to_string();
  EXPECT_EQ(chat->source(), kTinyTemplate);

  list.erase(1);
  dir.write("tokenizer_config.json", ordered_json{{"chat_template", list}}.dump());
  auto no_default = ChatTemplate::load(dir.path());
  ASSERT_FALSE(no_default.is_ok());
  EXPECT_EQ(no_default.status().code(), StatusCode::kInvalidArgument);
}

TEST(ChatTemplateLoad, MissingTemplateIsNotFound) {
  test::TempDir dir;
  auto none = ChatTemplate::load(dir.path());
  ASSERT_FALSE(none.is_ok());
  EXPECT_EQ(none.status().code(), StatusCode::kNotFound);
  dir.write("tokenizer_config.json", R"({"bos_token": "<s>"})");
  auto still_none = ChatTemplate::load(dir.path());
  ASSERT_FALSE(still_none.is_ok());
  EXPECT_EQ(still_none.status().code(), StatusCode::kNotFound);
}

TEST(ChatTemplateLoad, SyntaxErrorNamesTheTemplateLine) {
  test::TempDir dir;
  dir.write("chat_template.jinja", "{% for m in messages %}\n{{ m.content }\n{% endfor %}");
  auto chat = ChatTemplate::load(dir.path());
  ASSERT_FALSE(chat.is_ok());
  EXPECT_EQ(chat.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(chat.status().message(), StartsWith("chat template line 2: "));
}

TEST(ChatTemplateLoad, FixtureTemplates) {
  const std::filesystem::path data = MSI_TEST_DATA_DIR;
  for (const char* model : {"tiny-mixtral", "tiny-qwen3-moe", "tiny-qwen2-moe"}) {
    SCOPED_TRACE(model);
    auto chat = ChatTemplate::load(data / model);
    ASSERT_TRUE(chat.is_ok()) << chat.status().to_string();
    auto out = chat->render(nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])"), {});
    ASSERT_TRUE(out.is_ok()) << out.status().to_string();
  }
  auto mixtral = ChatTemplate::load(data / "tiny-mixtral");
  ASSERT_TRUE(mixtral.is_ok());
  auto out = mixtral->render(nlohmann::json::parse(R"([{"role": "user", "content": "hi"}])"), {});
  EXPECT_EQ(*out, "<s>[INST] hi [/INST]");
}

}  // namespace
}  // namespace msi
