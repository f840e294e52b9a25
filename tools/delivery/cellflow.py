"""Which names each notebook code cell binds and reads, and which earlier cells a cell needs.

A notebook is one long program cut into cells. The student edition uses this to tell the learner
which names a check looks for; the tests use it to run an exercise, or a widget, with only the
cells it depends on instead of the whole notebook.
"""

from __future__ import annotations

import ast
import builtins
from dataclasses import dataclass, field

# names an IPython kernel provides without an import
KERNEL_NAMES = frozenset(dir(builtins)) | {"display", "get_ipython", "In", "Out", "exit", "quit"}


@dataclass
class CellNames:
    """``binds``: names the cell assigns, imports or defines at top level (``assigned``: those bound
    by assignment, i.e. variables); ``reads``: names it reads before binding them itself (free
    names); ``touches``: names it changes without rebinding them (``x[i] = v``, ``x.a = v``,
    ``x.method(...)`` as a statement); ``passes``: names it hands to a call, which may change them
    (``fit(model, ...)`` trains ``model``); ``star``: it has ``from ... import *``."""

    binds: set[str] = field(default_factory=set)
    assigned: set[str] = field(default_factory=set)
    reads: set[str] = field(default_factory=set)
    touches: set[str] = field(default_factory=set)
    passes: set[str] = field(default_factory=set)
    star: bool = False


def python_source(source: str) -> str:
    """Cell source with IPython syntax (``%magic``, ``!shell``) turned into plain Python."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def _target_names(target: ast.AST) -> list[ast.Name]:
    return [n for n in ast.walk(target) if isinstance(n, ast.Name)]


class _Scanner(ast.NodeVisitor):
    """Collects module-level bindings in source order and every load of a global name."""

    def __init__(self):
        self.first_bind: dict[str, tuple[int, int]] = {}
        self.assigned: set[str] = set()
        self.first_read: dict[str, tuple[int, int]] = {}
        self.touches: set[str] = set()
        self.passes: set[str] = set()
        self.star = False
        self.local: list[set[str]] = []  # stack of function/lambda/comprehension scopes

    @staticmethod
    def _pos(node) -> tuple[int, int]:
        return getattr(node, "lineno", 0), getattr(node, "col_offset", 0)

    def _bind(self, name: str, node) -> None:
        if self.local:
            self.local[-1].add(name)
        else:
            self.first_bind.setdefault(name, self._pos(node))

    def _is_local(self, name: str) -> bool:
        return any(name in scope for scope in self.local)

    # bindings -------------------------------------------------------------------------------
    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            if not self._is_local(node.id):
                self.first_read.setdefault(node.id, self._pos(node))
        else:
            self._bind(node.id, node)
            if not self.local:
                self.assigned.add(node.id)

    def visit_Import(self, node) -> None:
        for alias in node.names:
            self._bind((alias.asname or alias.name).split(".")[0], node)

    def visit_ImportFrom(self, node) -> None:
        for alias in node.names:
            if alias.name == "*":
                self.star = True
            else:
                self._bind(alias.asname or alias.name, node)

    def _store_base(self, target: ast.AST) -> None:
        while isinstance(target, ast.Attribute | ast.Subscript):
            target = target.value
        if isinstance(target, ast.Name) and not self._is_local(target.id):
            self.touches.add(target.id)

    def _target(self, target: ast.AST) -> None:
        if isinstance(target, ast.Tuple | ast.List):
            for t in target.elts:
                self._target(t)
            return
        if isinstance(target, ast.Starred):
            target = target.value
        if isinstance(target, ast.Attribute | ast.Subscript):
            self._store_base(target)
        self.visit(target)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)  # the right-hand side is read before the names are bound
        for t in node.targets:
            self._target(t)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        if isinstance(node.target, ast.Name):
            if not self._is_local(node.target.id):
                self.first_read.setdefault(node.target.id, self._pos(node))
            self._bind(node.target.id, node)
            if not self.local:
                self.assigned.add(node.target.id)
        else:
            self._target(node.target)

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name:  # ``except E as err`` binds err for the handler's body
            self._bind(node.name, node)
            if not self.local:
                self.assigned.add(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
        self.visit(node.target)

    def visit_Expr(self, node: ast.Expr) -> None:
        call = node.value
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute):
            self._store_base(call.func.value)  # model.train_step(...) changes model
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        for arg in [*node.args, *(k.value for k in node.keywords)]:
            if isinstance(arg, ast.Name) and not self._is_local(arg.id):
                self.passes.add(arg.id)
        self.generic_visit(node)

    # scopes ---------------------------------------------------------------------------------
    def _function(self, node, body) -> None:
        for d in getattr(node, "decorator_list", []):
            self.visit(d)
        args = node.args
        for default in [*args.defaults, *(d for d in args.kw_defaults if d is not None)]:
            self.visit(default)
        params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
        params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
        # names assigned anywhere in the body are local to it (unless declared global)
        assigned = {n.id for stmt in body for n in ast.walk(stmt)
                    if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
        declared = {name for stmt in body for n in ast.walk(stmt)
                    if isinstance(n, ast.Global | ast.Nonlocal) for name in n.names}
        self.local.append(params | (assigned - declared))
        for stmt in body:
            self.visit(stmt)
        self.local.pop()

    def visit_FunctionDef(self, node) -> None:
        self._bind(node.name, node)
        self._function(node, node.body)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._function(node, [node.body])

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._bind(node.name, node)
        for expr in [*node.bases, *node.decorator_list]:
            self.visit(expr)
        self.local.append(set())
        for stmt in node.body:
            self.visit(stmt)
        self.local.pop()

    def _comprehension(self, node, parts) -> None:
        self.visit(node.generators[0].iter)  # evaluated in the enclosing scope
        self.local.append({n.id for g in node.generators for n in _target_names(g.target)})
        for g in node.generators:
            if g is not node.generators[0]:
                self.visit(g.iter)
            for cond in g.ifs:
                self.visit(cond)
        for part in parts:
            self.visit(part)
        self.local.pop()

    def visit_ListComp(self, node) -> None:
        self._comprehension(node, [node.elt])

    visit_SetComp = visit_GeneratorExp = visit_ListComp

    def visit_DictComp(self, node) -> None:
        self._comprehension(node, [node.key, node.value])


def cell_names(source: str) -> CellNames:
    """The names one code cell binds, reads, touches and passes on (see ``CellNames``)."""
    tree = ast.parse(python_source(source))
    s = _Scanner()
    s.visit(tree)
    reads = {n for n, pos in s.first_read.items()
             if n not in KERNEL_NAMES and (n not in s.first_bind or pos <= s.first_bind[n])}
    return CellNames(binds=set(s.first_bind), assigned=s.assigned, reads=reads,
                     touches=s.touches - KERNEL_NAMES, passes=s.passes - KERNEL_NAMES, star=s.star)


def needed_cells(sources: list[str | None], target: int,
                 follow: tuple[str, ...] = ("stores", "calls")) -> list[int]:
    """Indexes of the cells that cell ``target`` needs, itself included, in notebook order.

    ``sources`` holds one entry per cell (``None`` for cells that are not code). For each name a
    needed cell reads, the last earlier cell that binds it is needed, and so is every cell between
    the two that changes it, if it is a variable: by a store or method call (``"stores"`` in
    ``follow``) or by passing it to a call (``"calls"``: a training call changes the model it is
    given). UPPER_CASE settings count as constants, so passing ``SEED`` around does not pull cells
    in. With less to follow the slice is smaller: enough to show a widget, not to reproduce a number."""
    names = [cell_names(s) if s is not None else None for s in sources]

    def changes(j: int, name: str) -> bool:
        n = names[j]
        return n is not None and ("stores" in follow and name in n.touches or "calls" in follow and name in n.passes)

    needed: set[int] = set()
    pending = [target]
    while pending:
        i = pending.pop()
        if i in needed:
            continue
        needed.add(i)
        for name in names[i].reads:
            binders = [j for j in range(i) if names[j] is not None and name in names[j].binds]
            if not binders:
                continue
            b = binders[-1]
            pending.append(b)
            if name in names[b].assigned and not name.isupper():
                pending += [j for j in range(b + 1, i) if changes(j, name)]
    return sorted(needed)
