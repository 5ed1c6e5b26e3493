"""Personal data: ``project.privacy`` erases a data subject everywhere (``mloop forget``), purges what is
past its retention (``mloop retention purge``) and names the inputs the prediction log hashes.

>>> report = project.privacy.forget("customer_id", 42)           # doctest: +SKIP
>>> report.models                                                 # doctest: +SKIP
['fraud v3']
"""

from mloop.privacy.reports import ForgetReport, PurgeReport
from mloop.privacy.service import PrivacyService

__all__ = ["ForgetReport", "PrivacyService", "PurgeReport"]
