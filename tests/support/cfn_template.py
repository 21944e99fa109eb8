"""Test helpers for the deploy/ CloudFormation templates: load (short tags included) and resolve intrinsics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
TEMPLATES = sorted(DEPLOY.glob("*.yaml"))
PSEUDO = {"AWS::Partition": "aws", "AWS::AccountId": "123456789012", "AWS::Region": "us-east-1",
          "AWS::StackName": "audit-bedrock", "AWS::URLSuffix": "amazonaws.com"}
_NO_VALUE = object()


def load(path: Path) -> dict[str, Any]:
    """Parse a template with cfn-lint's decoder, which turns !Ref/!Sub/!If... into their long forms."""
    from cfnlint.decode import cfn_yaml

    doc: dict[str, Any] = cfn_yaml.loads(path.read_text())
    return doc


class Resolver:
    """Evaluates the intrinsic functions a template uses, for given parameter values.

    A resource reference resolves to `<LogicalId>` and an attribute to `<LogicalId.Attr>`, so resolved
    documents can be compared with expected ones.
    """

    def __init__(self, template: dict[str, Any], params: dict[str, str] | None = None) -> None:
        self.t = template
        self.params = {k: str(v.get("Default", "")) for k, v in (template.get("Parameters") or {}).items()
                       if "Default" in v}
        self.params.update(params or {})
        missing = [k for k in template.get("Parameters") or {} if k not in self.params]
        if missing:
            raise KeyError(f"no value for parameters {missing}")
        self.conditions = {name: self.value(expr) for name, expr in (template.get("Conditions") or {}).items()}

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            return self.params[name]
        if name in self.t["Resources"]:
            return f"<{name}>"
        raise KeyError(f"unresolvable Ref {name}")

    def sub(self, text: str, local: dict[str, Any]) -> str:
        def one(m: re.Match[str]) -> str:
            key = m.group(1)
            if key.startswith("!"):
                return "${" + key[1:] + "}"
            if key in local:
                return str(local[key])
            if "." in key:
                res, attr = key.split(".", 1)
                return f"<{res}.{attr}>"
            return str(self.ref(key))

        return re.sub(r"\$\{([^}]+)\}", one, text)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self.value(x) for x in node) if v is not _NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, arg), = node.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Condition":
                return self.conditions[arg]
            if fn == "Fn::Sub":
                if isinstance(arg, list):
                    return self.sub(arg[0], {k: self.value(v) for k, v in arg[1].items()})
                return self.sub(arg, {})
            if fn == "Fn::GetAtt":
                res, attr = arg if isinstance(arg, list) else arg.split(".", 1)
                return f"<{res}.{attr}>"
            if fn == "Fn::If":
                return self.value(arg[1] if self.conditions[arg[0]] else arg[2])
            if fn == "Fn::Not":
                return not self.value(arg[0])
            if fn == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if fn == "Fn::And":
                return all(self.value(a) for a in arg)
            if fn == "Fn::Or":
                return any(self.value(a) for a in arg)
            if fn == "Fn::Split":
                return str(self.value(arg[1])).split(arg[0])
            if fn == "Fn::Select":
                return self.value(arg[1])[int(self.value(arg[0]))]
            if fn == "Fn::Join":
                return str(arg[0]).join(str(x) for x in self.value(arg[1]))
        out = {}
        for k, v in node.items():
            r = self.value(v)
            if r is not _NO_VALUE:
                out[k] = r
        return out

    def resource(self, logical_id: str) -> dict[str, Any]:
        """A resource's resolved Properties."""
        props: dict[str, Any] = self.value(self.t["Resources"][logical_id].get("Properties") or {})
        return props
