#!/usr/bin/env python3
"""Reference renderer for msinfer's chat-template tests.

Renders every (template, case, add_generation_prompt) of tests/tokenizer/chat_cases.json the way
transformers' apply_chat_template does, with plain jinja2 (no transformers needed):
ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, loopcontrols), globals
raise_exception and strftime_now, the tojson filter overridden with json.dumps(...,
ensure_ascii=False), and the context render(messages=..., tools=..., documents=None,
add_generation_prompt=..., **{**special_tokens_map, **kwargs}).

Usage: render_chat.py REPO_ROOT OUT.json
Writes {"<template>/<case>/<gen|nogen>": {"text": ...} or {"error": ...}} (keys in order).
"""

import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

SPECIAL_TOKEN_KEYS = ["bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                      "mask_token"]


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def token_content(token):
    if isinstance(token, dict):
        return token.get("content")
    return token


def special_tokens_map(config):
    """transformers' tokenizer.special_tokens_map: the special tokens that are set, as strings."""
    out = {}
    for key in SPECIAL_TOKEN_KEYS:
        value = token_content(config.get(key))
        if value:
            out[key] = value
    extra = [token_content(t) for t in config.get("additional_special_tokens") or []]
    if extra:
        out["additional_special_tokens"] = extra
    return out


def load_model_template(model_dir):
    """chat_template.jinja if present, else tokenizer_config.json's chat_template (a string, or
    a list of named templates of which "default" is used), plus the special tokens."""
    config_path = os.path.join(model_dir, "tokenizer_config.json")
    config = {}
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    jinja_path = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8") as f:
            source = f.read()
    else:
        source = config["chat_template"]
        if isinstance(source, list):
            source = next(t["template"] for t in source if t["name"] == "default")
    return source, special_tokens_map(config)


def main():
    repo, out_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(repo, "tests/tokenizer/chat_cases.json"), encoding="utf-8") as f:
        spec = json.load(f)
    env = make_environment()
    results = {}
    for template in spec["templates"]:
        if "model_dir" in template:
            source, special = load_model_template(os.path.join(repo, template["model_dir"]))
        else:
            source, special = template["source"], special_tokens_map(template["special_tokens"])
        compiled = env.from_string(source)
        for case in spec["cases"]:
            for add_generation_prompt in (True, False):
                key = "{}/{}/{}".format(template["name"], case["name"],
                                        "gen" if add_generation_prompt else "nogen")
                kwargs = {**special, **case.get("extra_context", {})}
                try:
                    text = compiled.render(messages=case["messages"], tools=case.get("tools"),
                                           documents=None,
                                           add_generation_prompt=add_generation_prompt, **kwargs)
                    results[key] = {"text": text}
                except Exception as e:  # the template raised: record its message
                    results[key] = {"error": str(e)}
    with open(out_path, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()
