//! Templates: minijinja with strict undefined, so a misspelt variable is an error, never an
//! empty string (the guide's `$KUBE_NAM`).

use minijinja::{Environment, UndefinedBehavior, Value};

/// A template environment with kubemint's settings, holding `templates`
/// (name, source) pairs.
pub fn environment<'a>(
    templates: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Environment<'a>, minijinja::Error> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    for (name, source) in templates {
        env.add_template(name, source)?;
    }
    Ok(env)
}

/// Renders a one-off template string (a flag value, a destination path).
pub fn render_str(source: &str, context: &Value) -> Result<String, minijinja::Error> {
    let env = environment([])?;
    env.render_str(source, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strict_undefined() {
        let ctx = minijinja::context! { paths => minijinja::context! { bin => "/opt/bin" } };
        assert_eq!(render_str("{{ paths.bin }}/x", &ctx).unwrap(), "/opt/bin/x");
        let err = render_str("{{ paths.bim }}/x", &ctx).unwrap_err();
        assert!(format!("{err:#}").contains("undefined"), "{err:#}");
    }
}
