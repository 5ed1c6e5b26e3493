from mloop import Project


def test_open_on_each_backend_creates_local_admin(project: Project) -> None:
    assert project.actor.name == "local-admin"
    assert [u.name for u in project.users.list()] == ["local-admin"]
    assert project.audit.verify().ok
