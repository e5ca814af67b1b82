//! The one error type of the bindings and its mapping to fastcache's Python exceptions.
//!
//! The exception classes keep Streamlit's names (so `except` clauses written for
//! Streamlit read naturally) and subclass the matching builtin. Once an app has imported
//! Streamlit, the argument errors are raised as subclasses that Streamlit also recognises
//! (registered by `fastcache.streamlit`), so the page shows them as it shows its own.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyRecursionError, PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::PyType;

create_exception!(
    fastcache,
    UnhashableParamError,
    PyTypeError,
    "An argument of a cached function cannot be turned into a cache key."
);
create_exception!(
    fastcache,
    UserHashError,
    PyException,
    "A function given in `hash_funcs` raised; the original exception is the __cause__."
);
create_exception!(
    fastcache,
    BadTTLStringError,
    PyValueError,
    "A `ttl` string is not in the accepted duration syntax."
);
create_exception!(
    fastcache,
    ReentrantCallError,
    PyRecursionError,
    "A call would wait for its own computation, directly or through a cycle of waits \
     (raised instead of hanging)."
);
create_exception!(
    fastcache,
    SessionScopeError,
    PyRuntimeError,
    "A session-scoped cache was used where there is no Streamlit session."
);

/// The in-app forms of `UnhashableParamError` and `UserHashError`: subclasses of each that
/// are also Streamlit's own exception type.
struct AppErrorTypes {
    unhashable: Py<PyType>,
    user_hash: Py<PyType>,
}

static APP_ERROR_TYPES: PyOnceLock<AppErrorTypes> = PyOnceLock::new();

/// Called once by `fastcache.streamlit` when it engages; later calls change nothing.
#[pyfunction]
pub fn use_app_error_types(
    py: Python<'_>,
    unhashable: &Bound<'_, PyType>,
    user_hash: &Bound<'_, PyType>,
) -> PyResult<()> {
    let checks = [
        (unhashable, py.get_type::<UnhashableParamError>()),
        (user_hash, py.get_type::<UserHashError>()),
    ];
    for (given, base) in checks {
        if !given.is_subclass(&base)? {
            return Err(PyTypeError::new_err(format!(
                "{} must subclass {}",
                given.name()?,
                base.name()?
            )));
        }
    }
    let _ = APP_ERROR_TYPES.set(
        py,
        AppErrorTypes {
            unhashable: unhashable.clone().unbind(),
            user_hash: user_hash.clone().unbind(),
        },
    );
    Ok(())
}

/// The error as `class(message)`: the in-app subclass when one is registered.
fn raise_as(
    py: Python<'_>,
    app_type: fn(&AppErrorTypes) -> &Py<PyType>,
    plain: fn(String) -> PyErr,
    message: String,
) -> PyErr {
    match APP_ERROR_TYPES.get(py) {
        Some(types) => PyErr::from_type(app_type(types).bind(py).clone(), (message,)),
        None => plain(message),
    }
}

/// Everything the cache layer can fail with, mapped to Python at the boundary.
pub enum CacheError {
    /// An argument has no supported encoding and no `hash_funcs` entry.
    Unhashable {
        /// Parameter name; `None` for a value in `*args`.
        arg: Option<String>,
        type_name: String,
        func: String,
    },
    /// A `hash_funcs` function raised (boxed: it is the largest variant, and every
    /// `Result` of the encoder carries this enum).
    UserHash(Box<UserHashFailure>),
    /// A same-key call from the thread that is computing (or validating) that key.
    Reentrant { func: String },
    /// A same-key call from an asyncio task started inside that key's computation.
    ReentrantTask { func: String },
    /// A wait that would close a cycle: each step is a computation (`load(1)`) whose owner
    /// waits for the next, and the caller owns the last.
    WaitCycle { steps: Vec<String> },
    /// An exception from Python code (the user's function, validate, a conversion).
    Python(PyErr),
}

pub struct UserHashFailure {
    pub cause: PyErr,
    pub type_name: String,
    pub hash_func: String,
    pub func: String,
}

impl From<PyErr> for CacheError {
    fn from(err: PyErr) -> Self {
        CacheError::Python(err)
    }
}

pub fn unhashable_message(arg: Option<&str>, type_name: &str, func: &str) -> String {
    let shown = arg.unwrap_or("(unnamed)");
    let replacement = arg.map_or_else(|| "_arg".to_owned(), |a| format!("_{a}"));
    // Markdown, as Streamlit's (an app shows it formatted); it reads as plain text too.
    format!(
        "Cannot hash argument '{shown}' (of type `{type_name}`) in '{func}'.\n\
         \n\
         To address this, you can tell fastcache not to hash this argument by adding a\n\
         leading underscore to the argument's name in the function signature:\n\
         \n\
         ```\n\
         @fastcache.cache_resource\n\
         def {func}({replacement}, ...):\n    \
         ...\n\
         ```\n\
         \n\
         Or tell fastcache how to hash it: \
         `@fastcache.cache_resource(hash_funcs={{\"{type_name}\": some_function}})`\n\
         \n\
         Or, if `{type_name}` is your own class, give it value semantics: define \
         `__hash__` and `__eq__` (or make it a `@dataclass`), and fastcache keys it by \
         value, as functools.lru_cache does."
    )
}

impl CacheError {
    pub fn into_pyerr(self, py: Python<'_>) -> PyErr {
        match self {
            CacheError::Unhashable {
                arg,
                type_name,
                func,
            } => raise_as(
                py,
                |t| &t.unhashable,
                UnhashableParamError::new_err,
                unhashable_message(arg.as_deref(), &type_name, &func),
            ),
            CacheError::UserHash(failure) => {
                let UserHashFailure {
                    cause,
                    type_name,
                    hash_func,
                    func,
                } = *failure;
                let message = format!(
                    "{}\n\nThis error is likely due to a bug in {hash_func}, which is a \
                     user-defined hash function that was passed into the \
                     `@fastcache.cache_resource` decorator of '{func}'.\n\n\
                     {hash_func} failed when hashing an object of type `{type_name}`.",
                    describe(py, &cause),
                );
                let err = raise_as(py, |t| &t.user_hash, UserHashError::new_err, message);
                err.set_cause(py, Some(cause));
                err
            }
            CacheError::Reentrant { func } => ReentrantCallError::new_err(format!(
                "'{func}' was called with the arguments it is already computing or validating, \
                 from inside that computation (its own body, validate, on_release or a \
                 hash function). Waiting for itself would never end; call it with other \
                 arguments, or move the nested call out of the cached function."
            )),
            CacheError::ReentrantTask { func } => ReentrantCallError::new_err(format!(
                "'{func}' was awaited, from a task started inside its computation (by \
                 asyncio.gather, asyncio.wait_for, create_task, a TaskGroup), with the \
                 arguments that computation is for. The task could only get the value once \
                 the computation ends, and a computation that awaits the task would wait \
                 forever; await '{func}' directly, or start the task outside the computation."
            )),
            CacheError::WaitCycle { steps } => {
                let first = steps.first().cloned().unwrap_or_default();
                let last = steps.last().cloned().unwrap_or_default();
                ReentrantCallError::new_err(format!(
                    "waiting cycle: {last} needs {}. Each of these is being computed by a \
                     different thread or task that waits for the next, and this call, \
                     which computes {last}, now needs {first}: nobody could ever finish, so \
                     this call raises instead of waiting. Compute one of them without the \
                     other, or move the nested call out of the cached function.",
                    steps.join(", which needs ")
                ))
            }
            CacheError::Python(err) => err,
        }
    }
}

/// `TypeName: message` of an exception, for embedding in another error's text.
fn describe(py: Python<'_>, err: &PyErr) -> String {
    let type_name = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "Exception".to_owned());
    format!("{type_name}: {}", err.value(py))
}
