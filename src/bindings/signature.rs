//! Binding a call to the cached function's signature (`ArgPlan`, computed once at
//! decoration): defaults applied, `_`-prefixed parameters left out, `*args`/`**kwargs`
//! kept apart, then each hashed value handed to the `Encoder` in signature order.

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString, PyTuple};
use smallvec::SmallVec;

use crate::bindings::encode::{ArgName, Encoder};
use crate::bindings::errors::CacheError;
use crate::engine::key::{EncodedKey, Tag};

/// One parameter of the cached function's signature.
pub struct Param {
    name: Py<PyString>,
    default: Option<Py<PyAny>>,
    /// False for names with a leading underscore: excluded from the key, never hashed.
    hashed: bool,
}

/// How to bind a call to the signature, computed once at decoration.
#[derive(Default)]
pub struct ArgPlan {
    /// A wrapper's own signature, when it differs from the one it shows (that of the
    /// function it wraps): calls that fit only this one are bound to it.
    outer: Option<Box<ArgPlan>>,
    /// Positional-only then positional-or-keyword parameters, in order.
    positional: Vec<Param>,
    posonly_count: usize,
    var_args: bool,
    keyword_only: Vec<Param>,
    var_kwargs: bool,
}

/// `inspect.Parameter.kind` values.
const POSITIONAL_ONLY: u8 = 0;
const POSITIONAL_OR_KEYWORD: u8 = 1;
const VAR_POSITIONAL: u8 = 2;
const KEYWORD_ONLY: u8 = 3;
const VAR_KEYWORD: u8 = 4;

impl ArgPlan {
    /// From `(shown, own)`: the signature a call is bound to first, and the wrapper's own
    /// (or `None`); each as `(name, kind, has_default, default)` tuples in order.
    pub fn from_params(params: &Bound<'_, PyAny>) -> PyResult<Self> {
        let (shown, own): (Bound<'_, PyAny>, Bound<'_, PyAny>) = params.extract()?;
        let mut plan = Self::from_signature(&shown)?;
        if !own.is_none() {
            plan.outer = Some(Box::new(Self::from_signature(&own)?));
        }
        Ok(plan)
    }

    fn from_signature(params: &Bound<'_, PyAny>) -> PyResult<Self> {
        let mut plan = ArgPlan::default();
        for item in params.try_iter()? {
            let (name, kind, has_default, default): (Bound<PyString>, u8, bool, Bound<PyAny>) =
                item?.extract()?;
            let param = Param {
                hashed: !name.to_str()?.starts_with('_'),
                name: name.unbind(),
                default: has_default.then(|| default.unbind()),
            };
            match kind {
                POSITIONAL_ONLY => {
                    plan.posonly_count += 1;
                    plan.positional.push(param);
                }
                POSITIONAL_OR_KEYWORD => plan.positional.push(param),
                VAR_POSITIONAL => plan.var_args = true,
                KEYWORD_ONLY => plan.keyword_only.push(param),
                VAR_KEYWORD => plan.var_kwargs = true,
                other => {
                    return Err(pyo3::exceptions::PyValueError::new_err(format!(
                        "unknown parameter kind {other}"
                    )))
                }
            }
        }
        Ok(plan)
    }

    pub fn traverse(&self, visit: &pyo3::PyVisit<'_>) -> Result<(), pyo3::PyTraverseError> {
        for p in self.positional.iter().chain(&self.keyword_only) {
            visit.call(&p.name)?;
            if let Some(d) = &p.default {
                visit.call(d)?;
            }
        }
        match &self.outer {
            Some(outer) => outer.traverse(visit),
            None => Ok(()),
        }
    }

    fn slot_of(&self, py: Python<'_>, name: &Bound<'_, PyAny>) -> PyResult<Option<usize>> {
        let keyword_capable = self.positional.iter().enumerate().skip(self.posonly_count);
        let keyword_only = self
            .keyword_only
            .iter()
            .enumerate()
            .map(|(i, p)| (i + self.positional.len(), p));
        // Names are nearly always interned, so identity settles most comparisons.
        for (i, p) in keyword_capable.chain(keyword_only) {
            let param_name = p.name.bind(py);
            if param_name.is(name) || param_name.as_any().eq(name)? {
                return Ok(Some(i));
            }
        }
        Ok(None)
    }

    /// Binds the call to the signature and encodes the hashed values; a call that does not
    /// fit it but fits a wrapper's own signature is bound to that one (under its own tag, so
    /// the two never share a key). `Ok(None)` when the call fits neither: the caller then
    /// runs the function uncached so Python raises its own, exact `TypeError`.
    pub fn key<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        // Binding writes nothing until the call is known to fit, so a call that does not
        // leaves the encoder empty for the next signature.
        if let Some(key) = self.bind(encoder, bound_to, args, kwargs)? {
            return Ok(Some(key));
        }
        let Some(outer) = &self.outer else {
            return Ok(None);
        };
        encoder.writer.tag(Tag::OuterSignature);
        outer.bind(encoder, bound_to, args, kwargs)
    }

    fn bind<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        if let Some(key) = self.positional_key(encoder, bound_to, args, kwargs)? {
            return Ok(Some(key));
        }
        let py = args.py();
        let n_named = self.positional.len() + self.keyword_only.len();
        // Inline for the usual handful of parameters: a hit allocates nothing here.
        let mut slots: SmallVec<[Option<Bound<'_, PyAny>>; 8]> = SmallVec::new();
        slots.resize(n_named, None);
        let given = bound_to.into_iter().cloned().chain(args.iter());
        let mut extra_positional = Vec::new();
        for (i, value) in given.enumerate() {
            if i < self.positional.len() {
                slots[i] = Some(value);
            } else if self.var_args {
                extra_positional.push(value);
            } else {
                return Ok(None);
            }
        }
        let mut extra_keywords = Vec::new();
        if let Some(kwargs) = kwargs {
            for (name, value) in kwargs.iter() {
                match self.slot_of(py, &name)? {
                    Some(i) if slots[i].is_some() => return Ok(None),
                    Some(i) => slots[i] = Some(value),
                    None if self.var_kwargs => extra_keywords.push((name, value)),
                    None => return Ok(None),
                }
            }
        }
        let params = self.positional.iter().chain(&self.keyword_only);
        for (slot, param) in slots.iter_mut().zip(params) {
            if slot.is_none() {
                match &param.default {
                    Some(default) => *slot = Some(default.bind(py).clone()),
                    None => return Ok(None),
                }
            }
        }

        let params = self.positional.iter().chain(&self.keyword_only);
        for (value, param) in slots.iter().zip(params) {
            if !param.hashed {
                continue;
            }
            let value = value.as_ref().expect("every slot was filled above");
            encoder.arg(Some(ArgName::Param(&param.name)), value)?;
        }
        if self.var_args {
            encoder
                .writer
                .sequence(Tag::VarArgs, extra_positional.len());
            for value in &extra_positional {
                encoder.arg(None, value)?;
            }
        }
        if self.var_kwargs {
            let mut items = Vec::with_capacity(extra_keywords.len());
            for (name, value) in &extra_keywords {
                let name = name.cast::<PyString>().map_err(PyErr::from)?;
                if name.to_str()?.starts_with('_') {
                    continue;
                }
                items.push(encoder.isolated(|e| {
                    e.structure(name.as_any())?;
                    e.arg(Some(ArgName::Keyword(name.clone().unbind())), value)
                })?);
            }
            encoder.writer.unordered(Tag::VarKwargs, items);
        }
        Ok(Some(encoder.finish()))
    }
}

impl ArgPlan {
    /// The common call: every argument positional, one per named parameter, nothing for
    /// `*args`/`**kwargs`/keyword-only parameters. Encodes straight from the argument
    /// tuple, with no binding table. `None` when the call is not of that shape.
    fn positional_key<'a>(
        &'a self,
        encoder: &mut Encoder<'a>,
        bound_to: Option<&Bound<'_, PyAny>>,
        args: &Bound<'_, PyTuple>,
        kwargs: Option<&Bound<'_, PyDict>>,
    ) -> Result<Option<EncodedKey>, CacheError> {
        let offset = usize::from(bound_to.is_some());
        let simple = kwargs.is_none_or(|k| k.is_empty())
            && !self.var_args
            && !self.var_kwargs
            && self.keyword_only.is_empty()
            && args.len() + offset == self.positional.len();
        if !simple {
            return Ok(None);
        }
        for (i, param) in self.positional.iter().enumerate() {
            if !param.hashed {
                continue;
            }
            let name = Some(ArgName::Param(&param.name));
            match (i, bound_to) {
                (0, Some(instance)) => encoder.arg(name, instance)?,
                _ => encoder.arg(name, &*args.get_borrowed_item(i - offset)?)?,
            }
        }
        Ok(Some(encoder.finish()))
    }
}
