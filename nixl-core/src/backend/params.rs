//! Reading a backend's creation parameters: the caller's value, else the backend's default,
//! and numbers refused with a message naming the backend and the key.

use super::Params;
use crate::status::{Result, err};

/// The parameters one backend was created with, over its defaults.
pub struct ParamReader<'a> {
    backend: &'static str,
    given: &'a Params,
    defaults: Params,
}

impl<'a> ParamReader<'a> {
    /// `given` by the caller, `defaults` of the backend named `backend`.
    pub fn new(backend: &'static str, given: &'a Params, defaults: Params) -> Self {
        ParamReader {
            backend,
            given,
            defaults,
        }
    }

    /// The value of `key` (empty where neither the caller nor the defaults have it).
    pub fn get(&self, key: &str) -> String {
        self.given
            .get(key)
            .or_else(|| self.defaults.get(key))
            .cloned()
            .unwrap_or_default()
    }

    /// The value of `key` as an unsigned number.
    pub fn num(&self, key: &str) -> Result<u64> {
        let v = self.get(key);
        v.parse::<u64>().map_err(|_| {
            err!(
                InvalidParam,
                "{} backend parameter {key}={v:?} is not a number",
                self.backend
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_over_default_and_numbers_checked() {
        let given: Params = [("a".to_string(), "7".to_string())].into();
        let defaults: Params = [("a", "1"), ("b", "2"), ("c", "x")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let r = ParamReader::new("T", &given, defaults);
        assert_eq!((r.num("a").unwrap(), r.num("b").unwrap()), (7, 2));
        assert_eq!(r.get("missing"), "");
        let e = r.num("c").unwrap_err();
        assert!(e.to_string().contains("T backend parameter c=\"x\""), "{e}");
    }
}
