pub fn run(
    _c: &crate::args::Cli,
    _a: &crate::args::DemoArgs,
) -> anyhow::Result<std::process::ExitCode> {
    anyhow::bail!("todo")
}
