"""SBML -> :class:`SbmlSpec`: states, parameters and equations as expression trees.

Semantics follow AMICI for models with constant compartments:

* a species with ``hasOnlySubstanceUnits="false"`` is a concentration: its state is
  the concentration, kinetic laws give amount per time, so its derivative is
  ``sum(stoichiometry * rate) / compartment size``; with ``hasOnlySubstanceUnits="true"``
  the state is the amount and the derivative is ``sum(stoichiometry * rate)``;
* initial values come from initial assignments, else ``initialConcentration`` or
  ``initialAmount`` (converted with the compartment size where needed);
* boundary-condition and constant species are states with zero derivative unless a
  rate rule drives them; assignment-rule targets are not states but definitions;
* parameters and compartments with rate rules are states; constant ones (and
  non-constant ones that no rule changes) are entries of the parameter vector;
  parameters with initial assignments (and no rule) are constant definitions.

Events (:class:`SbmlEvent`) keep their trigger, delay, priority, persistence,
initial value, ``useValuesFromTriggerTime`` and assignments; their targets are
states or entries of the parameter vector (a non-constant parameter without rules
stays a parameter, and events change it during a simulation).

Unsupported constructs are reported by name with :class:`~il6rcc.errors.PetabError`:
algebraic rules, the ``delay`` and ``rateOf`` functions, fast reactions, variable
stoichiometry, conversion factors, compartments whose size changes while species live
in them, and event assignments to rule targets, to parameters with initial
assignments, or to compartments that hold species. Function definitions are expanded
by libsbml's converter before conversion.
"""

from __future__ import annotations

import graphlib
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

import libsbml

from ..errors import PetabError
from ._math import Expr, free_symbols, from_ast, substitute, uses_time

StateKind = str  # "species" | "parameter" | "compartment"


@dataclass(frozen=True)
class SbmlEvent:
    """One SBML event (semantics of SBML Level 3, section 4.12).

    Attributes:
        id: the event id (or ``#k`` for the k-th event without one).
        trigger: boolean expression; the event fires when it changes from false to true.
        initial_value: the trigger's value just before the start time (an event whose
            trigger is true at the start fires then only when this is False).
        persistent: whether a delayed execution still happens when the trigger turns
            false before it.
        delay: expression of the delay between firing and execution, or None.
        priority: expression ordering simultaneous executions (higher first), or None.
        use_values_from_trigger_time: whether the assignments' values are computed when
            the event fires (True) or when it executes.
        assignments: (target id, expression) pairs; targets are states or parameters.
    """

    id: str
    trigger: Expr
    initial_value: bool
    persistent: bool
    delay: Expr | None
    priority: Expr | None
    use_values_from_trigger_time: bool
    assignments: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True)
class SbmlSpec:
    """A compiled SBML model (immutable, hashable).

    Attributes:
        model_id: the SBML model id.
        digest: SHA-256 of the SBML text (identifies the model for ``jax.jit``).
        state_ids: [n_states] ids of the state variables.
        state_kinds: [n_states] ``species``, ``parameter`` or ``compartment``.
        parameter_ids: [n_params] ids of constant parameters and compartments.
        parameter_values: [n_params] their SBML values (NaN where unset).
        compartment_ids: the subset of ``parameter_ids`` that are compartments.
        definitions: (id, expression) pairs in dependency order: assignment rules,
            constant parameters with initial assignments, reaction rates (by reaction id).
        derivatives: [n_states] d(state)/dt, in the model's time unit.
        initial_values: [n_states] initial value of each state (may refer to
            parameters, definitions and other states' initial values).
        species_compartment: (species id, compartment id, has_only_substance_units)
            for every species.
        reaction_ids: ids of the reactions, in document order.
        stoichiometry: (state index, reaction index, coefficient) of every species whose
            derivative is ``sum(coefficient * rate) / size`` (``/ size`` for
            concentrations); other states are driven by rate rules or are constant.
        rate_rule_states: indices of the states driven by rate rules.
        events: the model's events (:class:`SbmlEvent`).
    """

    model_id: str
    digest: str
    state_ids: tuple[str, ...]
    state_kinds: tuple[StateKind, ...]
    parameter_ids: tuple[str, ...]
    parameter_values: tuple[float, ...]
    compartment_ids: tuple[str, ...]
    definitions: tuple[tuple[str, Expr], ...]
    derivatives: tuple[Expr, ...]
    initial_values: tuple[Expr, ...]
    species_compartment: tuple[tuple[str, str, bool], ...]
    reaction_ids: tuple[str, ...] = ()
    stoichiometry: tuple[tuple[int, int, float], ...] = ()
    rate_rule_states: tuple[int, ...] = ()
    events: tuple[SbmlEvent, ...] = ()

    @property
    def definition_ids(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.definitions)

    @property
    def known_ids(self) -> frozenset[str]:
        """Every id a formula may refer to."""
        return frozenset(self.state_ids) | set(self.parameter_ids) | set(self.definition_ids)


def read_sbml(path: str | Path) -> SbmlSpec:
    """Read and compile an SBML file; see the module docstring for the semantics."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PetabError(f"cannot read SBML file {str(path)!r}: {err}") from err
    return compile_sbml(text, where=path.name)


def compile_sbml(text: str, where: str = "SBML model") -> SbmlSpec:
    """Compile SBML text (see :func:`read_sbml`)."""
    document = libsbml.readSBMLFromString(text)
    errors = [
        document.getError(i)
        for i in range(document.getNumErrors())
        if document.getError(i).getSeverity() >= libsbml.LIBSBML_SEV_ERROR
    ]
    if errors or document.getModel() is None:
        details = "; ".join(f"line {e.getLine()}: {e.getMessage().strip()}" for e in errors[:5])
        raise PetabError(f"{where}: not a readable SBML document: {details or 'no model'}")
    compiler = _Compiler(document.getModel(), where, hashlib.sha256(text.encode()).hexdigest())
    compiler.unsupported()  # before the converter, which refuses some of these itself
    if document.getModel().getNumFunctionDefinitions():
        props = libsbml.ConversionProperties()
        props.addOption("expandFunctionDefinitions")
        if document.convert(props) != libsbml.LIBSBML_OPERATION_SUCCESS:
            log = document.getErrorLog()
            details = "; ".join(
                log.getError(i).getMessage().strip() for i in range(min(3, log.getNumErrors()))
            )
            raise PetabError(
                f"{where}: libsbml could not expand the function definitions: {details}"
            )
        compiler.m = document.getModel()
    return compiler.run()


class _Compiler:
    def __init__(self, model, where: str, digest: str) -> None:
        self.m = model
        self.where = where
        self.digest = digest

    def math(self, node, what: str) -> Expr:
        if node is None:
            raise PetabError(f"{self.where}: {what} has no math")
        return from_ast(node, where=f"{self.where}: {what}")

    def unsupported(self) -> None:
        m = self.m
        problems = []
        algebraic = [r for r in m.getListOfRules() if r.isAlgebraic()]
        if algebraic:
            problems.append(f"{len(algebraic)} algebraic rule(s)")
        if m.isSetConversionFactor():
            problems.append(f"model conversion factor {m.getConversionFactor()!r}")
        for s in m.getListOfSpecies():
            if s.isSetConversionFactor():
                problems.append(f"conversion factor of species {s.getId()!r}")
        for r in m.getListOfReactions():
            if r.isSetFast() and r.getFast():
                problems.append(f"fast reaction {r.getId()!r}")
            for sr in list(r.getListOfReactants()) + list(r.getListOfProducts()):
                if sr.isSetStoichiometryMath():
                    problems.append(
                        f"stoichiometryMath of {sr.getSpecies()!r} in reaction {r.getId()!r}"
                    )
        if problems:
            raise PetabError(
                f"{self.where}: unsupported SBML feature(s): {'; '.join(problems)}. il6rcc "
                f"simulates models without algebraic rules, fast reactions and conversion "
                f"factors; remove or rewrite these, or use a tool that supports them (e.g. AMICI)"
            )

    def run(self) -> SbmlSpec:  # noqa: C901 - one pass per SBML element kind
        m = self.m
        rules = {r.getVariable(): r for r in m.getListOfRules() if not r.isAlgebraic()}
        assignment = {v: r for v, r in rules.items() if r.isAssignment()}
        rate = {v: r for v, r in rules.items() if r.isRate()}
        initial = {a.getSymbol(): a for a in m.getListOfInitialAssignments()}

        compartments = {c.getId(): c for c in m.getListOfCompartments()}
        species = {s.getId(): s for s in m.getListOfSpecies()}
        species_in = {}
        for s in species.values():
            species_in.setdefault(s.getCompartment(), []).append(s.getId())
        for cid in compartments:
            if (cid in assignment or cid in rate) and species_in.get(cid):
                raise PetabError(
                    f"{self.where}: unsupported SBML feature: compartment {cid!r} changes size "
                    f"(rule) while species {species_in[cid][:3]} live in it"
                )

        state_ids: list[str] = []
        kinds: list[str] = []
        inits: list[Expr] = []
        derivs: dict[str, Expr] = {}
        param_ids: list[str] = []
        param_values: list[float] = []
        definitions: dict[str, Expr] = {}

        def initial_of(sid: str, fallback: Expr | None) -> Expr:
            if sid in initial:
                return self.math(initial[sid].getMath(), f"initial assignment of {sid!r}")
            if fallback is None:
                raise PetabError(
                    f"{self.where}: {sid!r} has no initial value (no value attribute and no "
                    f"initial assignment); set one in the SBML or in the PEtab tables"
                )
            return fallback

        for cid, c in compartments.items():
            size = c.getSize() if c.isSetSize() else math.nan
            if cid in assignment:
                definitions[cid] = self.math(assignment[cid].getMath(), f"rule for {cid!r}")
            elif cid in rate:
                state_ids.append(cid)
                kinds.append("compartment")
                inits.append(initial_of(cid, ("num", size) if c.isSetSize() else None))
                derivs[cid] = self.math(rate[cid].getMath(), f"rate rule for {cid!r}")
            elif cid in initial:
                definitions[cid] = self.math(
                    initial[cid].getMath(), f"initial assignment of {cid!r}"
                )
            else:
                param_ids.append(cid)
                param_values.append(size)

        for p in m.getListOfParameters():
            pid = p.getId()
            value = p.getValue() if p.isSetValue() else math.nan
            if pid in assignment:
                definitions[pid] = self.math(assignment[pid].getMath(), f"rule for {pid!r}")
            elif pid in rate:
                state_ids.append(pid)
                kinds.append("parameter")
                inits.append(initial_of(pid, ("num", value) if p.isSetValue() else None))
                derivs[pid] = self.math(rate[pid].getMath(), f"rate rule for {pid!r}")
            elif pid in initial:
                definitions[pid] = self.math(
                    initial[pid].getMath(), f"initial assignment of {pid!r}"
                )
            else:
                param_ids.append(pid)
                param_values.append(value)

        species_info = []
        for sid, s in species.items():
            comp = s.getCompartment()
            hosu = bool(s.getHasOnlySubstanceUnits())
            species_info.append((sid, comp, hosu))
            if comp not in compartments:
                raise PetabError(
                    f"{self.where}: species {sid!r} is in unknown compartment {comp!r}"
                )
            if sid in assignment:
                definitions[sid] = self.math(assignment[sid].getMath(), f"rule for {sid!r}")
                continue
            volume = ("sym", comp)
            if s.isSetInitialConcentration():
                conc = ("num", s.getInitialConcentration())
                fallback = ("mul", conc, volume) if hosu else conc
            elif s.isSetInitialAmount():
                amount = ("num", s.getInitialAmount())
                fallback = amount if hosu else ("div", amount, volume)
            else:
                fallback = None
            state_ids.append(sid)
            kinds.append("species")
            inits.append(initial_of(sid, fallback))
            if sid in rate:
                derivs[sid] = self.math(rate[sid].getMath(), f"rate rule for {sid!r}")

        reaction_terms: dict[str, list[Expr]] = {}
        stoichiometry: dict[tuple[str, str], float] = {}
        for r in m.getListOfReactions():
            rid = r.getId()
            if not r.isSetKineticLaw() or not r.getKineticLaw().isSetMath():
                raise PetabError(f"{self.where}: reaction {rid!r} has no kinetic law")
            law = r.getKineticLaw()
            local = {}
            for lp in list(law.getListOfParameters()) + list(law.getListOfLocalParameters()):
                local[lp.getId()] = ("num", lp.getValue())
            expr = self.math(law.getMath(), f"kinetic law of reaction {rid!r}")
            if local:
                expr = substitute(expr, local)
            definitions[rid] = expr
            for sign, refs in ((-1.0, r.getListOfReactants()), (1.0, r.getListOfProducts())):
                for sr in refs:
                    sid = sr.getSpecies()
                    sp = species.get(sid)
                    if sp is None:
                        raise PetabError(
                            f"{self.where}: reaction {rid!r} refers to unknown species {sid!r}"
                        )
                    if sr.isSetId() and (sr.getId() in rules or sr.getId() in initial):
                        raise PetabError(
                            f"{self.where}: unsupported SBML feature: variable stoichiometry "
                            f"{sr.getId()!r} in reaction {rid!r}"
                        )
                    stoich = sr.getStoichiometry()
                    if not math.isfinite(stoich):
                        raise PetabError(
                            f"{self.where}: stoichiometry of {sid!r} in reaction {rid!r} is unset"
                        )
                    if sp.getBoundaryCondition() or sp.getConstant() or sid in assignment:
                        continue
                    if sid in rate:
                        raise PetabError(
                            f"{self.where}: species {sid!r} has a rate rule and takes part in "
                            f"reaction {rid!r}; SBML forbids this"
                        )
                    reaction_terms.setdefault(sid, []).append(
                        ("mul", ("num", sign * stoich), ("sym", rid))
                    )
                    stoichiometry.setdefault((sid, rid), 0.0)
                    stoichiometry[(sid, rid)] += sign * stoich

        for sid, comp, hosu in species_info:
            if sid in derivs or sid in assignment:
                continue
            terms = reaction_terms.get(sid)
            if not terms:
                derivs[sid] = ("num", 0.0)
                continue
            total = terms[0] if len(terms) == 1 else ("add", *terms)
            derivs[sid] = total if hosu else ("div", total, ("sym", comp))

        for pid in list(definitions):
            if pid in initial and pid not in assignment and uses_time(definitions[pid]):
                raise PetabError(
                    f"{self.where}: initial assignment of {pid!r} uses time; not supported"
                )

        known = set(state_ids) | set(param_ids) | set(definitions)
        self._check_symbols(definitions.items(), known, "definition of")
        self._check_symbols(zip(state_ids, inits, strict=True), known, "initial value of")
        self._check_symbols(derivs.items(), known, "derivative of")
        ordered = self._order(definitions)
        constant_defs = {
            pid
            for pid in definitions
            if pid in initial and pid not in assignment and pid not in rate
        }
        for pid in constant_defs:
            bad = free_symbols(definitions[pid]) & set(state_ids)
            if bad:
                raise PetabError(
                    f"{self.where}: initial assignment of parameter {pid!r} depends on "
                    f"state(s) {sorted(bad)}; only parameter-valued initial assignments of "
                    f"parameters are supported"
                )
        events = self._events(state_ids, param_ids, assignment, rate, initial, species_in)
        known_events = set(known)
        for event in events:
            items = [(f"trigger of event {event.id!r}", event.trigger)]
            items += [(f"delay of event {event.id!r}", e) for e in (event.delay,) if e]
            items += [(f"priority of event {event.id!r}", e) for e in (event.priority,) if e]
            items += [
                (f"assignment to {v!r} in event {event.id!r}", e) for v, e in event.assignments
            ]
            self._check_symbols(items, known_events, "math of")
        state_pos = {sid: i for i, sid in enumerate(state_ids)}
        reactions = [r.getId() for r in m.getListOfReactions()]
        reaction_pos = {rid: j for j, rid in enumerate(reactions)}
        return SbmlSpec(
            model_id=m.getId() or "sbml_model",
            digest=self.digest,
            state_ids=tuple(state_ids),
            state_kinds=tuple(kinds),
            parameter_ids=tuple(param_ids),
            parameter_values=tuple(float(v) for v in param_values),
            compartment_ids=tuple(c for c in compartments if c in param_ids),
            definitions=tuple((name, definitions[name]) for name in ordered),
            derivatives=tuple(derivs[s] for s in state_ids),
            initial_values=tuple(inits),
            species_compartment=tuple(species_info),
            reaction_ids=tuple(reactions),
            stoichiometry=tuple(
                (state_pos[sid], reaction_pos[rid], float(c))
                for (sid, rid), c in stoichiometry.items()
                if c != 0.0
            ),
            rate_rule_states=tuple(state_pos[v] for v in rate if v in state_pos),
            events=events,
        )

    def _events(self, state_ids, param_ids, assignment, rate, initial, species_in):
        """The model's events, their targets checked (see :class:`SbmlEvent`)."""
        out = []
        states, params = set(state_ids), set(param_ids)
        for k, e in enumerate(self.m.getListOfEvents()):
            eid = e.getId() or f"#{k + 1}"
            what = f"event {eid!r}"
            trigger = e.getTrigger()
            if trigger is None or not trigger.isSetMath():
                raise PetabError(f"{self.where}: {what} has no trigger")
            assignments = []
            for a in e.getListOfEventAssignments():
                var = a.getVariable()
                if var in assignment or var in initial and var not in states:
                    raise PetabError(
                        f"{self.where}: unsupported SBML feature: {what} assigns {var!r}, "
                        f"which has an assignment rule or an initial assignment"
                    )
                if species_in.get(var):
                    raise PetabError(
                        f"{self.where}: unsupported SBML feature: {what} changes the size of "
                        f"compartment {var!r} while species live in it"
                    )
                if var not in states and var not in params:
                    raise PetabError(f"{self.where}: {what} assigns unknown or constant id {var!r}")
                if var in rate and var not in states:  # pragma: no cover - rate targets are states
                    raise PetabError(f"{self.where}: {what} assigns {var!r}")
                assignments.append(
                    (var, self.math(a.getMath(), f"assignment to {var!r} in {what}"))
                )
            delay = e.getDelay() if e.isSetDelay() else None
            priority = e.getPriority() if e.isSetPriority() else None
            out.append(
                SbmlEvent(
                    id=eid,
                    trigger=self.math(trigger.getMath(), f"trigger of {what}"),
                    initial_value=bool(trigger.getInitialValue())
                    if trigger.isSetInitialValue()
                    else True,
                    persistent=bool(trigger.getPersistent()) if trigger.isSetPersistent() else True,
                    delay=None
                    if delay is None or not delay.isSetMath()
                    else self.math(delay.getMath(), f"delay of {what}"),
                    priority=None
                    if priority is None or not priority.isSetMath()
                    else self.math(priority.getMath(), f"priority of {what}"),
                    use_values_from_trigger_time=bool(e.getUseValuesFromTriggerTime())
                    if e.isSetUseValuesFromTriggerTime()
                    else True,
                    assignments=tuple(assignments),
                )
            )
        return tuple(out)

    def _check_symbols(self, items, known: set[str], what: str) -> None:
        for name, expr in items:
            unknown = sorted(free_symbols(expr) - known)
            if unknown:
                raise PetabError(
                    f"{self.where}: {what} {name!r} refers to unknown id(s) {unknown} "
                    f"(species reference ids and local parameters of other reactions cannot "
                    f"be used in math)"
                )

    def _order(self, definitions: dict[str, Expr]) -> list[str]:
        sorter = graphlib.TopologicalSorter(
            {name: free_symbols(expr) & set(definitions) for name, expr in definitions.items()}
        )
        try:
            return list(sorter.static_order())
        except graphlib.CycleError as err:
            raise PetabError(
                f"{self.where}: rules or kinetic laws depend on each other in a cycle: "
                f"{err.args[1]}"
            ) from None


__all__ = ["SbmlEvent", "SbmlSpec", "compile_sbml", "read_sbml"]
