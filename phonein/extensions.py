"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from typing import TYPE_CHECKING, ClassVar

from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Table
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    # Every model maps one table: declared so that Core statements on ``Model.__table__``
    # type-check (DeclarativeBase types it as any FromClause).
    __table__: ClassVar[Table]


# Views commit once and then serialise what they changed: expiring everything at commit
# would reload each object with another SELECT just to print it.
db = SQLAlchemy(model_class=Base, session_options={"expire_on_commit": False})
migrate = Migrate()
csrf = CSRFProtect()
login_manager = LoginManager()
limiter = Limiter(key_func=get_remote_address)

# The models' base class. Flask-SQLAlchemy builds db.Model at run time from Base, so a type
# checker cannot see it; to it, the models derive from Base, which is what db.Model is.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
