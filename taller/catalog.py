"""Every word that the workshop shows an attendee, in one place: what each exercise asks (the
stubs' docstrings, in Spanish) and what each check says when it fails, in Spanish and English.

A check (taller/checks1.py...) raises `Mismatch("key", **values)`; the runner prints the
check's `expected`, its `happened[key]` filled with the values, its `hint` and the section of
the post to reread. Keys are (step, check name); a test makes sure that every key a check can
raise has its text here, in both languages, and that every section is a real heading of the
step's post.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Text:
    es: str
    en: str

    def __call__(self, lang: str) -> str:
        return self.en if lang == "en" else self.es


@dataclass(frozen=True)
class Section:
    """A heading of a step's post, as written in the Spanish post and in its English twin."""

    step: int
    es: str
    en: str


@dataclass(frozen=True)
class Exercise:
    """A region of a step's code that the skeleton leaves for the attendee to write."""

    step: int
    name: str  # as in the `# EXERCISE: name` marker
    title: str  # one line, the docstring's first
    task: str  # the rest of the stub's docstring: what to write, and which calls matter
    section: Section


@dataclass(frozen=True)
class CheckText:
    title: Text
    expected: Text
    hint: Text
    section: Section
    happened: dict[str, Text] = field(default_factory=dict)


# -- the sections that the exercises and the checks send an attendee to reread ----------------

OFFERS = Section(1, "Las ofertas", "Offers")
UPDATES_1 = Section(1, "Las actualizaciones de estado", "Status updates")
RETRY_1 = Section(1, "Reintentar una semana", "Retrying a week")
RESULT_1 = Section(
    1, "El resultado, y cuánto se tarda en obtenerlo", "The result, and how long it takes to get it"
)
ONE_THREAD = Section(2, "Una tarea, un hilo", "One task, one thread")
INSIDE_EXECUTOR = Section(2, "Dentro del ejecutor", "Inside the executor")
RULE_1 = Section(
    2,
    "Regla 1: que la corrección no dependa de un mensaje",
    "Rule 1: correctness must not depend on a message",
)
BRAKE = Section(2, "El progreso, con freno", "Progress, with a brake")
LISTENS = Section(2, "El planificador escucha", "The scheduler listens")
ORDERS = Section(2, "El planificador da órdenes", "The scheduler gives orders")
TRY_2 = Section(2, "Pruébalo primero", "Try it first")
TWICE = Section(3, "Actualizaciones que pueden llegar dos veces", "Updates that may arrive twice")
STORE_FIRST = Section(3, "Guardar primero, confirmar después", "Store first, acknowledge after")
ONLY_IF_ABSENT = Section(3, "Escribir solo si no existe", "Write only if absent")
RECONCILE = Section(3, "Volver a suscribirse y reconciliar", "Subscribing again and reconciling")
EXPLICIT = Section(
    3, "Reconciliación explícita, y luego implícita", "Explicit reconciliation, then implicit"
)
TRY_3 = Section(3, "Pruébalo primero", "Try it first")

# -- the exercises: the docstrings of the skeletons' stubs (Spanish, like the notebooks) --------

EXERCISES = {
    (e.step, e.name): e
    for e in [
        Exercise(
            1,
            "offers",
            "Convierte cada oferta en tareas, y rechaza lo que no uses.",
            """\
pymesos llama a este método con una lista de ofertas; cada una reúne los recursos libres
de un agente. Para cada oferta:

- suma sus cpus y su memoria: scalar(offer, "cpus") y scalar(offer, "mem");
- mientras queden semanas en self.pending y quepa otra tarea (self.settings.task_cpus y
  self.settings.task_mem), saca la siguiente con self.pending.popleft(), crea su tarea
  con self.command_task(chunk, offer) y resta lo que pide. Redondea lo que queda a tres
  decimales, como hace Mesos: round(cpus - ..., 3);
- apunta la oferta en la línea de tiempo: self.timeline.offer(offer, len(tasks));
- si hay tareas, lánzalas todas en una llamada, con el filtro:
  driver.launchTasks(offer["id"], tasks, filters=DECLINE_FILTER);
- si no, recházala con el mismo filtro:
  driver.declineOffer(offer["id"], filters=DECLINE_FILTER)
  (y, si quieres, self._explain_decline(offer), que avisa de una oferta que no basta).

Al final, si ya no queda nada en self.pending y aún no lo has hecho, suprime las ofertas:
driver.suppressOffers(), y apúntalo en self.suppressed.""",
            OFFERS,
        ),
        Exercise(
            1,
            "updates",
            "Sigue las actualizaciones de estado de las tareas.",
            """\
Una actualización llega al menos una vez: puede llegar repetida, y repetida no debe
cambiar nada.

- task_id = update["task_id"]["value"], state = update["state"], y su lanzamiento:
  launch = self.running.get(task_id).
- Apúntala en la línea de tiempo:
  self.timeline.update(update, launch.chunk if launch else None).
- Si launch es None, la tarea ya no corre (o no es nuestra): no hagas nada más.
- TASK_FINISHED: quítala de self.running y recoge su resultado con
  self.collect(driver, task_id, launch).
- Un estado de FAILED_STATES: quítala de self.running e inténtalo otra vez con
  self.retry_or_fail(driver, task_id, launch, f"{state}: {why}"), donde why es
  update.get("message") o, si no hay, update.get("reason").
- TASK_STAGING, TASK_STARTING y TASK_RUNNING no piden nada.""",
            UPDATES_1,
        ),
        Exercise(
            2,
            "launch",
            "Arranca la tarea en un hilo propio, y vuelve enseguida.",
            """\
pymesos llama a este método desde su único hilo: si cuentas la semana aquí, el ejecutor no
atiende nada más mientras tanto; si lanzas una excepción, pymesos muere, y con él todas las
tareas del ejecutor.

- task_id = task["task_id"]["value"]. Qué semana contar viene en el campo data de la tarea:
  chunk = messages.decode(task.get("data")), con chunk["week"] y chunk["size"] (una clave
  de bikeshare.SIZES). Si data no se puede leer (ValueError, KeyError o TypeError):
  self.send_update(driver, task_id, "TASK_FAILED", message=f"bad task data: {error!r}"),
  y vuelve.
- Si chunk trae "progress", guárdalo en self.progress (bool).
- Si self.cancelled: TASK_KILLED con message="cancelled by the scheduler", y vuelve.
- running = Running(week); guárdalo en self.running[task_id] (con self.lock), y arranca
  threading.Thread(target=self.run_chunk, args=(driver, task_id, running, size, fail),
  name=task_id, daemon=True), con fail = bool(chunk.get("fail", False)).""",
            ONE_THREAD,
        ),
        Exercise(
            2,
            "run-chunk",
            "Cuenta la semana en el hilo de la tarea, y di cómo acabó.",
            """\
Toda tarea acaba con una actualización de estado, pase lo que pase.

- Primero, self.send_update(driver, task_id, "TASK_RUNNING").
- Si fail, lanza RuntimeError(f"chunk {running.week}: failing on purpose (--fail-chunk)").
- Cuenta: counts = bikeshare.count_chunk(running.week, size, on_day=...), con un on_day
  que llame a self.day_done(driver, task_id, running, days) tras cada día.
- La última actualización de la tarea la envía self.finish(driver, task_id, estado, ...),
  que antes la quita de self.running: cuando el planificador la recibe, la tarea ya no
  cuenta aquí como en marcha.
- Si todo va bien, el resultado viaja en la propia actualización, que es fiable:
  self.finish(driver, task_id, "TASK_FINISHED", data=messages.encode(counts)).
  No lo envíes como mensaje del framework: Mesos puede perderlo sin avisar.
- Si day_done lanza Cancelled: TASK_KILLED, con message=running.why.
- Cualquier otra excepción: TASK_FAILED, con message=f"{type(error).__name__}: {error}".""",
            ONE_THREAD,
        ),
        Exercise(
            2,
            "progress",
            "Tras cada día de la semana: envía el progreso, o para si te lo han pedido.",
            """\
count_chunk llama a este método, en el hilo de la tarea, al acabar cada día.

- Si running.stop está puesto (killTask, un cancel, un shutdown), lanza Cancelled: el
  final de un día es donde una semana puede dejarse a medias sin estropear nada.
- Si self.progress está activo y han pasado al menos PROGRESS_EVERY segundos desde
  running.last_report: pon running.last_report = time.monotonic() y envía el progreso
  como mensaje del framework (no como actualización de estado):
  self.send_message(driver, {"type": messages.PROGRESS, "task_id": task_id,
  "week": running.week, "days": days}).""",
            BRAKE,
        ),
        Exercise(
            2,
            "messages",
            "Atiende los mensajes que te envían los ejecutores.",
            """\
Un mensaje del framework son bytes que Mesos lleva sin mirarlos, y que puede perder sin
avisar: nada de lo que dice puede ser imprescindible.

- agent = agent_id["value"]; message = messages.decode(data). Si no se puede leer
  (ValueError), no es nuestro: avisa con log.warning y vuelve, sin lanzar nada.
- Apúntalo en la línea de tiempo: self.timeline.message("in", agent, message).
- Todo mensaje demuestra que nuestro ejecutor corre en ese agente:
  self.executors[agent] = executor_id["value"], para que cancel() y set_progress()
  sepan a quién escribir.
- "hello" y "ack": basta con anotarlos en el registro (log.info).
- "progress": si message["task_id"] es una tarea que sigue en self.running y
  message["days"] es un entero, mueve la barra:
  self.advance(launch.chunk, min(days, bikeshare.WEEKDAYS)).
  El progreso de una tarea que ya acabó llega tarde: no cambia nada.""",
            LISTENS,
        ),
        Exercise(
            3,
            "updates",
            "Atiende cada actualización, y confírmala solo cuando ya ha surtido efecto.",
            """\
Cada actualización se atiende igual, lanzara quien lanzara la tarea y llegue las veces que
llegue: lo que significa lo dicen el identificador de la tarea y el checkpoint.

- task_id = update["task_id"]["value"], state = update["state"].
- Ya hay respuesta sobre esa tarea: self.unanswered.discard(task_id).
- task = parse_task_id(task_id) da (semana, intento), o None si no es nuestra. Apúntala:
  self.timeline.update(update, task[0] if task else None).
- Según el caso, en este orden:
  - task es None: no es de este trabajo; ignórala (log.warning);
  - su semana ya está en self.results: self.already_done(driver, task_id, state);
  - TASK_FINISHED: self.collect(driver, task_id, task[0], update);
  - un estado de ACTIVE_STATES: self.runs(driver, task_id, task, update);
  - la tarea está en self.running: acabó sin resultado, self.ended(driver, task_id, update);
  - si no, es una repetida: ignórala.
- Por último, y solo entonces: self.acknowledge(driver, update). Si el planificador muere
  antes de esta línea, el agente reenvía la actualización al siguiente planificador.""",
            STORE_FIRST,
        ),
        Exercise(
            3,
            "record",
            "Guarda el resultado de una semana en el checkpoint, antes que nada.",
            """\
collect() ya ha leído el resultado (counts) del TASK_FINISHED de task_id.

- self.store.save_result(chunk, counts) lo escribe solo si no existe, y devuelve True si
  lo ha escrito esta llamada: entonces apunta la semana en self.recorded.
- Si devuelve False, otro planificador lo guardó antes, y el suyo es el que vale:
  counts = self.store.result(chunk).
- Después: self.results[chunk] = counts, self.forget(task_id), self.unqueue(chunk) y
  self.advance(chunk, bikeshare.WEEKDAYS).
- Otro intento de la misma semana que siga en self.running sobra: mátalo con
  self.kill_redundant(driver, other_task_id, "may still run").
- --crash-after: si self.settings.crash_after y len(self.recorded) llega a él, llama a
  self.crash(f"--crash-after {self.settings.crash_after}: {task_id} is recorded").
- Por último, self.end_if_done().""",
            STORE_FIRST,
        ),
        Exercise(
            3,
            "reconcile",
            "Pregunta al maestro por tus tareas tras (volver a) suscribirte.",
            """\
Mientras no estábamos suscritos pudimos perdernos actualizaciones: antes de decidir qué
lanzar otra vez, hay que saber qué sigue vivo.

- Empieza una reconciliación nueva: self._reconciliation += 1.
- Explícita: las tareas que pueden estar corriendo son las de self.running. Apúntalas en
  self.unanswered = set(self.running) y pregunta por ellas con
  self.ask(driver, self._reconciliation, RECONCILE_FIRST_RETRY), que vuelve a preguntar,
  cada vez más despacio, hasta que todas tengan respuesta.
- Implícita: pregunta por cualquier otra tarea nuestra que conozca el maestro, con una
  lista vacía: self.call(driver.reconcileTasks, []).

Las respuestas llegan como actualizaciones de estado, a statusUpdate().""",
            EXPLICIT,
        ),
    ]
}

# -- the checks ---------------------------------------------------------------------------------

T = Text  # the tables below are long enough as they are

CHECKS: dict[tuple[int, str], CheckText] = {
    # == step 1 =================================================================================
    (1, "offer-fills"): CheckText(
        T(
            "Una oferta se llena con tantas tareas como caben",
            "An offer is filled with as many tasks as fit",
        ),
        T(
            "de cada oferta, tantas semanas como quepan en sus cpus y su memoria, lanzadas en una "
            "sola llamada a launchTasks con el id de la oferta",
            "from each offer, as many weeks as its cpus and memory hold, launched in one call "
            "to launchTasks with the offer's id",
        ),
        T(
            "Resta a la oferta lo que pide cada tarea mientras quepa otra, y redondea lo que queda "
            "a tres decimales (round(x, 3)): 0,3 - 0,1 - 0,1 no es 0,1 en coma flotante.",
            "Take each task's share off the offer while another one fits, and round what is "
            "left to three decimals (round(x, 3)): 0.3 - 0.1 - 0.1 is not 0.1 in floating point.",
        ),
        OFFERS,
        {
            "count": T(
                "de una oferta de {cpus:g} cpus y {mem:g} MB, con tareas de {task_cpus:g} cpus y "
                "{task_mem:g} MB, caben {expected} tareas, y se lanzaron {got}",
                "an offer of {cpus:g} cpus and {mem:g} MB, with tasks of {task_cpus:g} cpus and "
                "{task_mem:g} MB, holds {expected} tasks, and {got} were launched",
            ),
            "calls": T(
                "la oferta se usó con estas llamadas al driver: {calls}",
                "the offer was used with these driver calls: {calls}",
            ),
            "order": T(
                "las tareas lanzadas fueron {got}; se esperaban las primeras semanas pendientes, "
                "en orden: {expected}",
                "the tasks launched were {got}; the first pending weeks were expected, in "
                "order: {expected}",
            ),
            "pending": T(
                "tras lanzar {launched} tareas, en self.pending quedan {left} semanas, no "
                "{expected}",
                "after launching {launched} tasks, self.pending holds {left} weeks, not {expected}",
            ),
            "timeline": T(
                "la línea de tiempo no tiene la oferta con sus tareas: {timeline}",
                "the timeline lacks the offer and its tasks: {timeline}",
            ),
        },
    ),
    (1, "offer-declines"): CheckText(
        T(
            "Lo que no se usa de una oferta se rechaza, con un filtro",
            "What an offer is not used for is declined, with a filter",
        ),
        T(
            "una oferta en la que no cabe ninguna tarea se rechaza con declineOffer y "
            "filters=DECLINE_FILTER; la que sí se usa lleva el mismo filtro en launchTasks",
            "an offer that holds no task is declined with declineOffer and "
            "filters=DECLINE_FILTER; one that is used carries the same filter in launchTasks",
        ),
        T(
            "Sin declineOffer la oferta queda retenida: nadie más puede usar esos recursos hasta "
            "que el maestro la retire. Y sin filtro, el maestro nos la vuelve a ofrecer a los 5 "
            "segundos: refuse_seconds dice cuánto no queremos verla.",
            "Without declineOffer the offer stays held: nobody else can use those resources "
            "until the master rescinds it. And without a filter, the master offers them to us "
            "again within 5 seconds: refuse_seconds says how long we do not want them.",
        ),
        OFFERS,
        {
            "not-declined": T(
                "una oferta de {cpus:g} cpus y {mem:g} MB, donde no cabe una tarea de "
                "{task_cpus:g} cpus y {task_mem:g} MB, no se rechazó; llamadas: {calls}",
                "an offer of {cpus:g} cpus and {mem:g} MB, which cannot hold a task of "
                "{task_cpus:g} cpus and {task_mem:g} MB, was not declined; calls: {calls}",
            ),
            "decline-filter": T(
                "se rechazó con filters={filters!r}, no con DECLINE_FILTER ({expected!r})",
                "it was declined with filters={filters!r}, not with DECLINE_FILTER ({expected!r})",
            ),
            "launch-filter": T(
                "launchTasks se llamó con filters={filters!r}, no con DECLINE_FILTER "
                "({expected!r}): lo que sobra de la oferta se rechaza con ese filtro",
                "launchTasks was called with filters={filters!r}, not with DECLINE_FILTER "
                "({expected!r}): what the tasks leave of the offer is declined with it",
            ),
        },
    ),
    (1, "offer-suppress"): CheckText(
        T(
            "Con todo lanzado, las ofertas se suprimen (una vez)",
            "Once everything is launched, offers are suppressed (once)",
        ),
        T(
            "suppressOffers() en cuanto no queda ninguna semana pendiente, una sola vez, y "
            "self.suppressed a True; una oferta que aún llegue después se rechaza",
            "suppressOffers() as soon as no week is pending, once, and self.suppressed set "
            "to True; an offer that still arrives afterwards is declined",
        ),
        T(
            "Sin SUPPRESS, el maestro nos sigue ofreciendo recursos que solo vamos a rechazar. "
            "Suprime al final de resourceOffers, después de lanzar, si self.pending está vacía "
            "y self.suppressed aún es False.",
            "Without SUPPRESS, the master keeps offering us resources that we would only "
            "decline. Suppress at the end of resourceOffers, after launching, if self.pending "
            "is empty and self.suppressed is still False.",
        ),
        OFFERS,
        {
            "calls": T(
                "las llamadas al driver fueron {got}; se esperaban {expected}",
                "the driver calls were {got}; expected {expected}",
            ),
            "flag": T(
                "self.suppressed es {got} tras {when}",
                "self.suppressed is {got} after {when}",
            ),
        },
    ),
    (1, "update-finished"): CheckText(
        T(
            "Un TASK_FINISHED trae el resultado de su semana",
            "A TASK_FINISHED brings its week's result",
        ),
        T(
            "cada TASK_FINISHED recoge el resultado de su semana (collect); cuando están todas, "
            "el trabajo acaba (finished) con el resultado de la versión secuencial; TASK_RUNNING "
            "no cambia nada, y cada actualización queda en la línea de tiempo",
            "each TASK_FINISHED collects its week's result (collect); once all are in, the job "
            "ends (finished) with the sequential version's result; TASK_RUNNING changes "
            "nothing, and every update is in the timeline",
        ),
        T(
            "Busca la tarea en self.running por su task_id; si está y el estado es "
            "TASK_FINISHED, quítala de self.running y llama a self.collect(driver, task_id, "
            "launch): collect lee el resultado, lo guarda y acaba el trabajo cuando toca.",
            "Look the task up in self.running by its task_id; if it is there and the state "
            "is TASK_FINISHED, remove it from self.running and call self.collect(driver, "
            "task_id, launch): collect reads the result, keeps it and ends the job when due.",
        ),
        UPDATES_1,
        {
            "not-collected": T(
                "tras el TASK_FINISHED de {task}, la semana {chunk} no está en self.results",
                "after the TASK_FINISHED of {task}, week {chunk} is not in self.results",
            ),
            "progress": T(
                "la barra de progreso recibió {got}; se esperaba {expected}",
                "the progress bar got {got}; expected {expected}",
            ),
            "early": T(
                "el trabajo acabó con {done} de {total} semanas hechas",
                "the job ended with {done} of {total} weeks done",
            ),
            "not-finished": T(
                "con las {total} semanas hechas, finished no está puesto",
                "with all {total} weeks done, finished is not set",
            ),
            "result": T(
                "el resultado no es el de la versión secuencial; failure={failure!r}",
                "the result is not the sequential version's; failure={failure!r}",
            ),
            "calls": T(
                "las actualizaciones pidieron al driver {calls}, y no hacía falta nada",
                "the updates asked the driver for {calls}, and nothing was needed",
            ),
            "timeline": T(
                "la línea de tiempo tiene {got} actualizaciones de las {expected} que llegaron",
                "the timeline holds {got} of the {expected} updates that arrived",
            ),
        },
    ),
    (1, "update-duplicate"): CheckText(
        T(
            "Una actualización repetida no cambia nada",
            "A repeated update changes nothing",
        ),
        T(
            "un TASK_FINISHED repetido, un TASK_FAILED que llega tarde o la actualización de una "
            "tarea que no es nuestra no cambian los resultados, los intentos, la cola ni la "
            "barra, y no se vuelve a leer ningún resultado",
            "a repeated TASK_FINISHED, a late TASK_FAILED or the update of a task that is not "
            "ours changes neither the results, the attempts, the queue nor the bar, and no "
            "result is read again",
        ),
        T(
            "Mesos entrega cada actualización al menos una vez. Quita la tarea de self.running "
            "en cuanto acaba, y no hagas nada con una actualización cuya tarea ya no está en "
            "self.running.",
            "Mesos delivers each update at least once. Remove the task from self.running as "
            "soon as it ends, and do nothing with an update whose task is no longer in "
            "self.running.",
        ),
        UPDATES_1,
        {
            "changed": T(
                "tras {what}, cambió {field}: antes {before}, después {after}",
                "after {what}, {field} changed: before {before}, after {after}",
            ),
            "still-running": T(
                "{task} acabó con TASK_FINISHED y sigue en self.running",
                "{task} ended with TASK_FINISHED and is still in self.running",
            ),
            "timeline": T(
                "en la línea de tiempo, las semanas de las actualizaciones son {got}; se "
                "esperaba {expected} (None: la tarea ya no corría)",
                "in the timeline, the updates' weeks are {got}; expected {expected} (None: the "
                "task no longer ran)",
            ),
        },
    ),
    (1, "update-failed"): CheckText(
        T(
            "Una tarea que falla se vuelve a intentar",
            "A task that fails is tried again",
        ),
        T(
            "con cualquier estado de FAILED_STATES, la semana vuelve a la cola una vez (aunque "
            "la actualización se repita), se piden ofertas otra vez (reviveOffers) y la "
            "siguiente oferta lanza el intento 2; tras max_attempts intentos, el trabajo falla",
            "with any state of FAILED_STATES, the week goes back to the queue once (even if "
            "the update is repeated), offers are asked for again (reviveOffers) and the next "
            "offer launches attempt 2; after max_attempts attempts, the job fails",
        ),
        T(
            "TASK_FAILED no es el único final sin resultado: TASK_LOST, TASK_KILLED, "
            "TASK_DROPPED... están todos en FAILED_STATES. Quita la tarea de self.running y deja "
            "el resto a self.retry_or_fail(driver, task_id, launch, why).",
            "TASK_FAILED is not the only end without a result: TASK_LOST, TASK_KILLED, "
            "TASK_DROPPED... are all in FAILED_STATES. Remove the task from self.running and "
            "leave the rest to self.retry_or_fail(driver, task_id, launch, why).",
        ),
        RETRY_1,
        {
            "not-retried": T(
                "tras un {state}, la cola (self.pending) es {pending}; se esperaba [1]",
                "after a {state}, the queue (self.pending) is {pending}; expected [1]",
            ),
            "calls": T(
                "tras un {state}, las llamadas al driver fueron {got}; se esperaba {expected}",
                "after a {state}, the driver calls were {got}; expected {expected}",
            ),
            "still-running": T(
                "tras un {state}, {task} sigue en self.running",
                "after a {state}, {task} is still in self.running",
            ),
            "next-attempt": T(
                "tras un {state}, la siguiente oferta lanzó {got}, no chunk-1-attempt-2",
                "after a {state}, the next offer launched {got}, not chunk-1-attempt-2",
            ),
            "not-failed": T(
                "con max_attempts=2 y dos intentos fallidos, el trabajo no ha fallado: "
                "finished={finished}, failure={failure!r}",
                "with max_attempts=2 and two failed attempts, the job has not failed: "
                "finished={finished}, failure={failure!r}",
            ),
        },
    ),
    (1, "job"): CheckText(
        T("El trabajo entero, en un clúster local", "The whole job, on a local cluster"),
        T(
            "el paso, ejecutado como python -m PAQUETE --size small en un LocalCluster de dos "
            "agentes, acaba bien y con el resultado de la versión secuencial",
            "the step, run as python -m PACKAGE --size small on a LocalCluster of two agents, "
            "ends well and with the sequential version's result",
        ),
        T(
            "Las comprobaciones anteriores pasan, así que mira lo que dice el paso al final (o "
            "ejecútalo tú con --verbose sobre el clúster de make demo).",
            "The earlier checks pass, so read what the step says at the end (or run it "
            "yourself with --verbose on the cluster of make demo).",
        ),
        RESULT_1,
        {
            "exit": T(
                "terminó con el código {code}, y escribió:\n{output}",
                "it exited with code {code}, and wrote:\n{output}",
            ),
            "result": T(
                "terminó, pero su resumen no es el de la versión secuencial:\n{output}",
                "it ended, but its summary is not the sequential version's:\n{output}",
            ),
            "timeout": T(
                "no acabó en {seconds:g} s; lo paramos. Escribió:\n{output}",
                "it did not end within {seconds:g} s; it was stopped. It wrote:\n{output}",
            ),
        },
    ),
    # == step 2 =================================================================================
    (2, "launch-thread"): CheckText(
        T(
            "launchTask arranca la tarea en un hilo propio y vuelve enseguida",
            "launchTask starts the task on a thread of its own and returns at once",
        ),
        T(
            "launchTask vuelve sin esperar a que la semana se cuente; dos tareas se cuentan a la "
            "vez, cada una en su hilo, con run_chunk(driver, task_id, running, size, fail) y "
            "running en self.running mientras corre; el ajuste progress de data se aplica",
            "launchTask returns without waiting for the week to be counted; two tasks are "
            "counted at once, each on its thread, with run_chunk(driver, task_id, running, "
            "size, fail) and running in self.running while it runs; data's progress setting "
            "is applied",
        ),
        T(
            "Crea un threading.Thread con target=self.run_chunk y llama a start() (no a run(), "
            "que lo ejecuta en el hilo actual). Antes, guarda Running(week) en "
            "self.running[task_id]: killTask lo busca ahí.",
            "Create a threading.Thread with target=self.run_chunk and call start() (not run(), "
            "which runs it on the current thread). Before that, store Running(week) in "
            "self.running[task_id]: killTask looks for it there.",
        ),
        ONE_THREAD,
        {
            "blocked": T(
                "launchTask no volvió en {seconds:g} s mientras la semana estaba retenida: "
                "cuenta la semana en el hilo de pymesos",
                "launchTask did not return within {seconds:g} s while the week was held: it "
                "counts the week on pymesos's thread",
            ),
            "not-started": T(
                "tras lanzar 2 tareas, run_chunk empezó {started} veces",
                "after launching 2 tasks, run_chunk started {started} times",
            ),
            "arguments": T(
                "run_chunk recibió {got}; se esperaba {expected}",
                "run_chunk got {got}; expected {expected}",
            ),
            "not-registered": T(
                "mientras {task} corre, self.running es {running}",
                "while {task} runs, self.running is {running}",
            ),
            "progress-setting": T(
                "una tarea con progress={sent} en su data dejó self.progress a {got}",
                "a task with progress={sent} in its data left self.progress at {got}",
            ),
        },
    ),
    (2, "launch-refused"): CheckText(
        T(
            "Una tarea que no puede correr acaba enseguida, sin hilo",
            "A task that cannot run ends at once, with no thread",
        ),
        T(
            "con un data que no se puede leer, un solo TASK_FAILED cuyo mensaje empieza por "
            "'bad task data: ', y sin excepción; tras un cancel, TASK_KILLED con 'cancelled by "
            "the scheduler'; en los dos casos, nada en self.running",
            "with data that cannot be read, a single TASK_FAILED whose message starts with "
            "'bad task data: ', and no exception; after a cancel, TASK_KILLED with 'cancelled "
            "by the scheduler'; in both cases, nothing in self.running",
        ),
        T(
            "Una excepción en launchTask mata el hilo de pymesos y, con él, todo el ejecutor. "
            "Envuelve la lectura de data en try/except (ValueError, KeyError, TypeError) y "
            "responde con una actualización.",
            "An exception in launchTask kills pymesos's thread, and the whole executor with "
            "it. Wrap the reading of data in try/except (ValueError, KeyError, TypeError) and "
            "answer with an update.",
        ),
        INSIDE_EXECUTOR,
        {
            "raised": T(
                "con data={data!r}, launchTask lanzó {error!r}",
                "with data={data!r}, launchTask raised {error!r}",
            ),
            "updates": T(
                "con {case}, las actualizaciones enviadas fueron {got}",
                "with {case}, the updates sent were {got}",
            ),
            "running": T(
                "con {case}, self.running quedó {running}",
                "with {case}, self.running was left as {running}",
            ),
        },
    ),
    (2, "run-finished"): CheckText(
        T(
            "Una tarea acaba en TASK_FINISHED, con su resultado en data",
            "A task ends in TASK_FINISHED, with its result in data",
        ),
        T(
            "run_chunk envía TASK_RUNNING y después TASK_FINISHED, cuyo data es "
            "messages.encode(counts) de la semana, y la quita de self.running",
            "run_chunk sends TASK_RUNNING, then TASK_FINISHED whose data is "
            "messages.encode(counts) of the week, and removes it from self.running",
        ),
        T(
            "El resultado tiene que viajar en la actualización de estado: el agente la guarda "
            "y la reenvía hasta que el planificador la confirma. Un mensaje del framework se "
            "puede perder sin que nadie lo sepa.",
            "The result must travel in the status update: the agent keeps it and sends it "
            "again until the scheduler acknowledges it. A framework message may be lost "
            "without anyone knowing.",
        ),
        RULE_1,
        {
            "raised": T("run_chunk lanzó {error!r}", "run_chunk raised {error!r}"),
            "states": T(
                "las actualizaciones de {task} fueron {got}; se esperaba {expected}",
                "the updates of {task} were {got}; expected {expected}",
            ),
            "no-data": T(
                "el TASK_FINISHED no lleva data; los mensajes del framework enviados, por su "
                "tipo: {messages}",
                "the TASK_FINISHED carries no data; the framework messages sent, by type: "
                "{messages}",
            ),
            "wrong-data": T(
                "el data del TASK_FINISHED no es el recuento de la semana {week}: {error}",
                "the TASK_FINISHED's data is not the count of week {week}: {error}",
            ),
            "still-running": T(
                "tras acabar, {task} sigue en self.running",
                "once ended, {task} is still in self.running",
            ),
        },
    ),
    (2, "run-failed"): CheckText(
        T(
            "Una semana que falla acaba en TASK_FAILED, sin matar el hilo",
            "A week that fails ends in TASK_FAILED, without killing the thread",
        ),
        T(
            "con fail, o si count_chunk lanza una excepción, run_chunk no la deja escapar: envía "
            "TASK_RUNNING y TASK_FAILED con el error en message, y la quita de self.running",
            "with fail, or if count_chunk raises, run_chunk does not let it escape: it sends "
            "TASK_RUNNING and TASK_FAILED with the error in message, and removes it from "
            "self.running",
        ),
        T(
            "Una excepción que escapa del hilo lo mata sin decir nada, y el planificador espera "
            "esa tarea para siempre. Rodea el recuento con try/except Exception y, en finally, "
            "quita la tarea de self.running.",
            "An exception that escapes the thread kills it silently, and the scheduler waits "
            "for that task forever. Wrap the counting in try/except Exception and, in finally, "
            "remove the task from self.running.",
        ),
        INSIDE_EXECUTOR,
        {
            "escaped": T(
                "con {case}, run_chunk dejó escapar {error!r}",
                "with {case}, run_chunk let {error!r} escape",
            ),
            "states": T(
                "con {case}, las actualizaciones fueron {got}; se esperaba {expected}",
                "with {case}, the updates were {got}; expected {expected}",
            ),
            "message": T(
                "con {case}, el TASK_FAILED dice {got!r}, que no menciona {expected!r}",
                "with {case}, the TASK_FAILED says {got!r}, which does not mention {expected!r}",
            ),
            "still-running": T(
                "con {case}, la tarea sigue en self.running",
                "with {case}, the task is still in self.running",
            ),
        },
    ),
    (2, "progress-message"): CheckText(
        T(
            "El progreso viaja en un mensaje del framework, con freno",
            "Progress travels in a framework message, with a brake",
        ),
        T(
            "tras cada día, un mensaje {'type': 'progress', 'task_id', 'week', 'days'} con "
            "send_message, nunca una actualización de estado; ninguno si self.progress está "
            "apagado, ni antes de PROGRESS_EVERY segundos desde el anterior",
            "after each day, a message {'type': 'progress', 'task_id', 'week', 'days'} with "
            "send_message, never a status update; none if self.progress is off, nor before "
            "PROGRESS_EVERY seconds since the last one",
        ),
        T(
            "El progreso es un «estaría bien saberlo»: va por el camino sin garantía, el de los "
            "mensajes (self.send_message). Y como cada mensaje cuesta, como mucho uno cada "
            "PROGRESS_EVERY segundos por tarea (running.last_report).",
            "Progress is nice to know: it goes the best-effort way, as a message "
            "(self.send_message). And since each message costs, at most one every "
            "PROGRESS_EVERY seconds per task (running.last_report).",
        ),
        BRAKE,
        {
            "as-update": T(
                "el progreso se envió como actualización de estado: {updates}",
                "progress was sent as a status update: {updates}",
            ),
            "messages": T(
                "con {case}, los mensajes enviados fueron {got}; se esperaba {expected}",
                "with {case}, the messages sent were {got}; expected {expected}",
            ),
        },
    ),
    (2, "progress-stop"): CheckText(
        T(
            "Una tarea que hay que parar se para al acabar el día",
            "A task that must stop stops at the end of the day",
        ),
        T(
            "si running.stop está puesto, day_done lanza Cancelled (y run_chunk acaba en "
            "TASK_KILLED con running.why)",
            "if running.stop is set, day_done raises Cancelled (and run_chunk ends in "
            "TASK_KILLED with running.why)",
        ),
        T(
            "killTask, cancel y shutdown solo ponen running.stop: es day_done quien mira, al "
            "acabar cada día, si tiene que parar, y lo hace lanzando Cancelled.",
            "killTask, cancel and shutdown only set running.stop: day_done is what looks, at "
            "the end of each day, whether to stop, and it does so by raising Cancelled.",
        ),
        ORDERS,
        {
            "not-stopped": T(
                "con running.stop puesto, day_done volvió sin lanzar Cancelled",
                "with running.stop set, day_done returned without raising Cancelled",
            ),
            "other": T(
                "con running.stop puesto, day_done lanzó {error!r}, no Cancelled",
                "with running.stop set, day_done raised {error!r}, not Cancelled",
            ),
            "killed": T(
                "una tarea parada en su primer día acabó con {got}, no TASK_KILLED con "
                "message={why!r}",
                "a task stopped on its first day ended with {got}, not TASK_KILLED with "
                "message={why!r}",
            ),
        },
    ),
    (2, "messages-progress"): CheckText(
        T(
            "El planificador mueve la barra con el progreso de las tareas que corren",
            "The scheduler moves the bar with the progress of running tasks",
        ),
        T(
            "un progress de una tarea de self.running mueve la barra hasta sus días (como mucho "
            "7); uno atrasado, de una tarea que ya acabó o desconocida, o con días que no son un "
            "entero, no cambia nada",
            "a progress message of a task in self.running moves the bar to its days (7 at "
            "most); a late one, one of a task that has ended or is unknown, or one whose days "
            "are not an integer changes nothing",
        ),
        T(
            "Busca la tarea por message['task_id'] en self.running, no por su semana: la "
            "semana de una tarea acabada ya tiene sus 7 días. Y deja que self.advance() decida: "
            "nunca mueve la barra hacia atrás.",
            "Look the task up by message['task_id'] in self.running, not by its week: the week "
            "of a task that has ended already has its 7 days. And let self.advance() decide: "
            "it never moves the bar backwards.",
        ),
        LISTENS,
        {
            "bar": T(
                "tras {what}, la barra recibió {got}; se esperaba {expected}",
                "after {what}, the bar got {got}; expected {expected}",
            ),
        },
    ),
    (2, "messages-not-ours"): CheckText(
        T(
            "Un mensaje que no es nuestro se ignora",
            "A message that is not ours is ignored",
        ),
        T(
            "con datos que messages.decode no puede leer, frameworkMessage vuelve sin lanzar "
            "nada y sin apuntar nada; un tipo desconocido tampoco cambia nada",
            "with data that messages.decode cannot read, frameworkMessage returns without "
            "raising and without recording anything; an unknown type changes nothing either",
        ),
        T(
            "Una excepción en un callback mata el hilo de pymesos, y pymesos da de baja el "
            "framework. messages.decode lanza ValueError con lo que no es nuestro: atrápalo.",
            "An exception in a callback kills pymesos's thread, and pymesos tears the framework "
            "down. messages.decode raises ValueError for what is not ours: catch it.",
        ),
        LISTENS,
        {
            "raised": T(
                "con data={data!r}, frameworkMessage lanzó {error!r}",
                "with data={data!r}, frameworkMessage raised {error!r}",
            ),
            "recorded": T(
                "con data={data!r}, la línea de tiempo tiene {messages} y la barra {progress}",
                "with data={data!r}, the timeline has {messages} and the bar {progress}",
            ),
        },
    ),
    (2, "messages-executors"): CheckText(
        T(
            "Cada mensaje dice dónde corre un ejecutor nuestro",
            "Each message tells where an executor of ours runs",
        ),
        T(
            "tras un hello del agente S1 y un ack del S0, self.executors es {'S0': "
            "EXECUTOR_ID, 'S1': EXECUTOR_ID}, los dos mensajes están en la línea de tiempo "
            "(direction 'in') y cancel() los envía a los dos ejecutores",
            "after a hello from agent S1 and an ack from S0, self.executors is {'S0': "
            "EXECUTOR_ID, 'S1': EXECUTOR_ID}, both messages are in the timeline (direction "
            "'in') and cancel() sends to both executors",
        ),
        T(
            "cancel() y set_progress() escriben a los ejecutores de self.executors. Apunta "
            "self.executors[agent_id['value']] = executor_id['value'] con cualquier mensaje, "
            "y self.timeline.message('in', agent, message).",
            "cancel() and set_progress() write to the executors in self.executors. Set "
            "self.executors[agent_id['value']] = executor_id['value'] with any message, and "
            "self.timeline.message('in', agent, message).",
        ),
        ORDERS,
        {
            "executors": T("self.executors es {got}", "self.executors is {got}"),
            "timeline": T("la línea de tiempo tiene {got}", "the timeline has {got}"),
            "cancel": T("cancel() envió {got}", "cancel() sent {got}"),
        },
    ),
    (2, "job"): CheckText(
        T("El trabajo entero, en un clúster local", "The whole job, on a local cluster"),
        T(
            "el paso, ejecutado como python -m PAQUETE --size small en un LocalCluster de dos "
            "agentes, con tu ejecutor en cada agente, acaba bien y con el resultado de la "
            "versión secuencial",
            "the step, run as python -m PACKAGE --size small on a LocalCluster of two agents, "
            "with your executor on each agent, ends well and with the sequential version's "
            "result",
        ),
        T(
            "El ejecutor corre en otro proceso: lo que escribe está en el stderr de su sandbox, "
            "en el agente. Prueba el paso con --verbose sobre el clúster de make demo.",
            "The executor runs in another process: what it writes is in its sandbox's stderr, "
            "on the agent. Try the step with --verbose on the cluster of make demo.",
        ),
        TRY_2,
        {
            "exit": T(
                "terminó con el código {code}, y escribió:\n{output}",
                "it exited with code {code}, and wrote:\n{output}",
            ),
            "result": T(
                "terminó, pero su resumen no es el de la versión secuencial:\n{output}",
                "it ended, but its summary is not the sequential version's:\n{output}",
            ),
            "timeout": T(
                "no acabó en {seconds:g} s; lo paramos. Escribió:\n{output}",
                "it did not end within {seconds:g} s; it was stopped. It wrote:\n{output}",
            ),
        },
    ),
    # == step 3 =================================================================================
    (3, "record-checkpoint"): CheckText(
        T(
            "El resultado de una semana va al checkpoint",
            "A week's result goes to the checkpoint",
        ),
        T(
            "record() escribe el resultado en el checkpoint (store.result(chunk)), lo pone en "
            "self.results, apunta la semana en self.recorded, completa sus 7 días en la barra, "
            "olvida la tarea y, con todas las semanas, acaba el trabajo",
            "record() writes the result to the checkpoint (store.result(chunk)), puts it in "
            "self.results, notes the week in self.recorded, completes its 7 days on the bar, "
            "forgets the task and, with every week in, ends the job",
        ),
        T(
            "La memoria muere con el proceso; el checkpoint no. Guarda con "
            "self.store.save_result(chunk, counts), y lo demás después: self.results, "
            "self.forget(task_id), self.advance(...), self.end_if_done().",
            "Memory dies with the process; the checkpoint does not. Store with "
            "self.store.save_result(chunk, counts), and the rest afterwards: self.results, "
            "self.forget(task_id), self.advance(...), self.end_if_done().",
        ),
        ONLY_IF_ABSENT,
        {
            "not-stored": T(
                "tras record() de la semana {chunk}, el checkpoint no tiene su resultado",
                "after record() of week {chunk}, the checkpoint lacks its result",
            ),
            "state": T(
                "tras record() de la semana {chunk}: {field} es {got}; se esperaba {expected}",
                "after record() of week {chunk}: {field} is {got}; expected {expected}",
            ),
            "not-finished": T(
                "con las {total} semanas guardadas, finished no está puesto",
                "with all {total} weeks recorded, finished is not set",
            ),
        },
    ),
    (3, "record-once"): CheckText(
        T(
            "El primer resultado de una semana es el que vale",
            "The first result of a week is the one that counts",
        ),
        T(
            "si el checkpoint ya tenía el resultado de la semana (lo guardó otro planificador), "
            "record() se queda con ese, no lo cuenta en self.recorded y no lo sobrescribe; un "
            "record() repetido no cambia nada",
            "if the checkpoint already held the week's result (another scheduler stored it), "
            "record() keeps that one, does not count it in self.recorded and does not "
            "overwrite it; a repeated record() changes nothing",
        ),
        T(
            "save_result() devuelve False si el resultado ya existía: entonces el que vale es "
            "self.store.result(chunk), para todos los planificadores. Apunta en self.recorded "
            "solo lo que guardó esta llamada.",
            "save_result() returns False if the result existed: then the one that counts is "
            "self.store.result(chunk), for every scheduler. Note in self.recorded only what "
            "this call stored.",
        ),
        ONLY_IF_ABSENT,
        {
            "overwrote": T(
                "la semana {chunk} ya estaba en el checkpoint, y record() se quedó con su propio "
                "resultado en lugar del guardado",
                "week {chunk} was already in the checkpoint, and record() kept its own result "
                "instead of the stored one",
            ),
            "store-changed": T(
                "el resultado guardado de la semana {chunk} cambió",
                "the stored result of week {chunk} changed",
            ),
            "recorded": T(
                "self.recorded es {got}; se esperaba {expected}",
                "self.recorded is {got}; expected {expected}",
            ),
            "progress": T(
                "la barra recibió {got}; se esperaba {expected}",
                "the bar got {got}; expected {expected}",
            ),
        },
    ),
    (3, "record-redundant"): CheckText(
        T(
            "Con la semana hecha, sus otros intentos se matan",
            "Once a week is done, its other attempts are killed",
        ),
        T(
            "si otro intento de la misma semana sigue en self.running, record() lo mata "
            "(killTask) y lo olvida; la semana no queda en la cola",
            "if another attempt of the same week is still in self.running, record() kills it "
            "(killTask) and forgets it; the week is not left in the queue",
        ),
        T(
            "Tras un agente inalcanzable que vuelve, dos intentos de la misma semana pueden "
            "correr a la vez. Recorre self.running y llama a self.kill_redundant(driver, "
            "other, 'may still run') con los de la misma semana.",
            "After an unreachable agent comes back, two attempts of the same week may run at "
            "once. Go through self.running and call self.kill_redundant(driver, other, 'may "
            "still run') on those of the same week.",
        ),
        TWICE,
        {
            "killed": T(
                "se mataron {got}; se esperaba {expected}",
                "{got} were killed; expected {expected}",
            ),
            "state": T("después, {field} es {got}", "afterwards, {field} is {got}"),
        },
    ),
    (3, "updates-ack-after"): CheckText(
        T(
            "Cada actualización se confirma después de guardar su resultado",
            "Each update is acknowledged after its result is stored",
        ),
        T(
            "un TASK_FINISHED se confirma una vez, y solo cuando su resultado ya está en el "
            "checkpoint",
            "a TASK_FINISHED is acknowledged once, and only once its result is in the checkpoint",
        ),
        T(
            "Confirma al final de statusUpdate, con self.acknowledge(driver, update): si "
            "confirmas antes y el planificador muere, el agente borra la actualización y el "
            "resultado no está en ninguna parte.",
            "Acknowledge at the end of statusUpdate, with self.acknowledge(driver, update): if "
            "you acknowledge first and the scheduler dies, the agent drops the update and the "
            "result is nowhere.",
        ),
        STORE_FIRST,
        {
            "acks": T(
                "las confirmaciones fueron {got} (tarea, ¿resultado ya guardado?); se esperaba "
                "{expected}",
                "the acknowledgements were {got} (task, result already stored?); expected "
                "{expected}",
            ),
        },
    ),
    (3, "updates-ack-all"): CheckText(
        T(
            "Toda actualización con uuid se confirma, también las repetidas",
            "Every update with a uuid is acknowledged, repeated ones too",
        ),
        T(
            "la de una tarea ajena y cada copia de un TASK_FINISHED repetido se confirman (una "
            "confirmación por actualización), la semana se guarda una vez, y las del maestro "
            "(sin uuid) no se confirman",
            "the update of a task not ours and each copy of a repeated TASK_FINISHED are "
            "acknowledged (one acknowledgement per update), the week is stored once, and the "
            "master's (with no uuid) are not acknowledged",
        ),
        T(
            "Una actualización sin confirmar bloquea las siguientes de su tarea en el agente, "
            "que la reenvía sin fin. Llama a self.acknowledge(driver, update) en todos los "
            "casos: ya sabe que las del maestro no llevan uuid.",
            "An unacknowledged update blocks the next ones of its task at the agent, which "
            "sends it again forever. Call self.acknowledge(driver, update) in every case: it "
            "knows that the master's carry no uuid.",
        ),
        STORE_FIRST,
        {
            "acks": T(
                "tras {what}, las confirmaciones fueron {got}; se esperaba {expected}",
                "after {what}, the acknowledgements were {got}; expected {expected}",
            ),
            "recorded": T(
                "tras un TASK_FINISHED repetido, self.recorded es {got}",
                "after a repeated TASK_FINISHED, self.recorded is {got}",
            ),
            "adopted": T(
                "una tarea ajena acabó en self.running: {running}",
                "a task not ours ended up in self.running: {running}",
            ),
        },
    ),
    (3, "updates-done"): CheckText(
        T(
            "Lo que llega de una semana hecha no la cambia",
            "What comes of a week that is done does not change it",
        ),
        T(
            "con la semana 3 hecha, un TASK_RUNNING de otro intento suyo se mata y no se "
            "adopta; su TASK_FINISHED y su TASK_KILLED no cambian nada: ni se guarda otra vez, "
            "ni vuelve a la cola, ni se piden ofertas",
            "with week 3 done, a TASK_RUNNING of another attempt of it is killed and not "
            "adopted; its TASK_FINISHED and its TASK_KILLED change nothing: it is neither "
            "stored again, nor queued again, nor are offers asked for",
        ),
        T(
            "Antes de mirar el estado, mira si la semana ya está en self.results: si lo está, "
            "self.already_done(driver, task_id, state) se encarga (mata lo que corre, ignora "
            "lo demás).",
            "Before looking at the state, look whether the week is in self.results: if it is, "
            "self.already_done(driver, task_id, state) takes care of it (kills what runs, "
            "ignores the rest).",
        ),
        TWICE,
        {
            "calls": T(
                "tras {what}, las llamadas al driver fueron {got}; se esperaba {expected}",
                "after {what}, the driver calls were {got}; expected {expected}",
            ),
            "state": T(
                "tras {what}, {field} es {got}",
                "after {what}, {field} is {got}",
            ),
        },
    ),
    (3, "reconcile-ask"): CheckText(
        T(
            "Al suscribirse, se pregunta por las tareas: explícita e implícitamente",
            "On subscribing, the tasks are asked about: explicitly and implicitly",
        ),
        T(
            "tras reregistered(), una reconciliación explícita con las tareas de self.running "
            "(las que pueden seguir vivas) y una implícita (lista vacía)",
            "after reregistered(), an explicit reconciliation with the tasks in self.running "
            "(those that may still live) and an implicit one (an empty list)",
        ),
        T(
            "La implícita solo responde por las tareas que el maestro conoce: una tarea "
            "apuntada que nunca llegó al maestro no tendría respuesta, y su semana esperaría "
            "para siempre. Pregunta por ellas por su nombre, con self.ask(...).",
            "The implicit one only answers for the tasks that the master knows: a task written "
            "down that never reached the master would get no answer, and its week would wait "
            "forever. Ask about them by name, with self.ask(...).",
        ),
        EXPLICIT,
        {
            "asked": T(
                "las llamadas a reconcileTasks fueron {got}; se esperaba {expected}",
                "the reconcileTasks calls were {got}; expected {expected}",
            ),
        },
    ),
    (3, "reconcile-retry"): CheckText(
        T(
            "Se vuelve a preguntar hasta que cada tarea responde",
            "The question is asked again until every task answers",
        ),
        T(
            "una reconciliación deja programado un reintento (self.later); cada reintento "
            "pregunta otra vez, cada vez más despacio, por las tareas aún sin respuesta, y "
            "para cuando todas han respondido",
            "a reconciliation leaves a retry scheduled (self.later); each retry asks again, "
            "waiting longer each time, about the tasks that have not answered, and stops once "
            "all have",
        ),
        T(
            "El maestro puede tardar en responder (tras un relevo, hasta que vuelven sus "
            "agentes). Guarda las tareas en self.unanswered y pregunta con self.ask(driver, "
            "self._reconciliation, RECONCILE_FIRST_RETRY); statusUpdate las quita de "
            "self.unanswered al llegar la respuesta.",
            "The master may take a while to answer (after a failover, until its agents come "
            "back). Keep the tasks in self.unanswered and ask with self.ask(driver, "
            "self._reconciliation, RECONCILE_FIRST_RETRY); statusUpdate discards them from "
            "self.unanswered when the answer comes.",
        ),
        EXPLICIT,
        {
            "no-retry": T(
                "tras la reconciliación no quedó ningún reintento programado",
                "after the reconciliation, no retry was scheduled",
            ),
            "asked": T(
                "{when}, el reintento preguntó {got}; se esperaba {expected}",
                "{when}, the retry asked {got}; expected {expected}",
            ),
            "delays": T(
                "los reintentos esperaron {got} s; se esperaba que cada uno esperara más que el "
                "anterior, empezando por {first:g}",
                "the retries waited {got} s; each was expected to wait longer than the one "
                "before, starting at {first:g}",
            ),
        },
    ),
    (3, "job"): CheckText(
        T("El trabajo entero, en un clúster local", "The whole job, on a local cluster"),
        T(
            "el paso, ejecutado como python -m PAQUETE --size small --state DIR en un "
            "LocalCluster de dos agentes, acaba bien y con el resultado de la versión "
            "secuencial",
            "the step, run as python -m PACKAGE --size small --state DIR on a LocalCluster of "
            "two agents, ends well and with the sequential version's result",
        ),
        T(
            "Las comprobaciones anteriores pasan, así que mira lo que dice el paso al final (o "
            "ejecútalo tú con --verbose sobre el clúster de make demo).",
            "The earlier checks pass, so read what the step says at the end (or run it "
            "yourself with --verbose on the cluster of make demo).",
        ),
        TRY_3,
        {
            "exit": T(
                "terminó con el código {code}, y escribió:\n{output}",
                "it exited with code {code}, and wrote:\n{output}",
            ),
            "result": T(
                "terminó, pero su resumen no es el de la versión secuencial:\n{output}",
                "it ended, but its summary is not the sequential version's:\n{output}",
            ),
            "timeout": T(
                "no acabó en {seconds:g} s; lo paramos. Escribió:\n{output}",
                "it did not end within {seconds:g} s; it was stopped. It wrote:\n{output}",
            ),
        },
    ),
}

# -- what the runner says around the checks -----------------------------------------------------

UI = {
    "header": T(
        "Paso {step}: compruebo {package} ({count} comprobaciones)",
        "Step {step}: checking {package} ({count} checks)",
    ),
    "expected": T("Se esperaba:", "Expected:"),
    "happened": T("Ha pasado:", "Happened:"),
    "hint": T("Pista:", "Hint:"),
    "reread": T("Relee:", "Reread:"),
    "section": T(
        "«{heading}», en el post del paso {step}", '"{heading}", in the post of step {step}'
    ),
    "stub": T(
        "{function}() es todavía el esqueleto del ejercicio «{exercise}» ({where}): "
        "lanza NotImplementedError",
        '{function}() is still the skeleton of exercise "{exercise}" ({where}): it raises '
        "NotImplementedError",
    ),
    "raised": T(
        "tu código lanzó {error} ({where})",
        "your code raised {error} ({where})",
    ),
    "raised-elsewhere": T("se lanzó {error}", "{error} was raised"),
    "hung": T(
        "la comprobación no acabó en {seconds:g} s: ¿un bucle que no termina, o una espera a "
        "algo que nunca llega?",
        "the check did not end within {seconds:g} s: a loop that never ends, or a wait for "
        "something that never comes?",
    ),
    "thread": T(
        "en un hilo de las tareas, {what}",
        "on a task's thread, {what}",
    ),
    "where": T("{path}, línea {line}, en {function}", "{path}, line {line}, in {function}"),
    "blog": T("{url} (con el blog servido: make blog)", "{url} (with the blog served: make blog)"),
    "import": T(
        "No se puede importar {package}: {error} ({where})",
        "Cannot import {package}: {error} ({where})",
    ),
    "failed": T(
        "Pasan {passed} de {count} comprobaciones. Arregla esta y vuelve a probar: {command}",
        "{passed} of {count} checks pass. Fix this one and try again: {command}",
    ),
    "passed": T(
        "Pasan las {count} comprobaciones. Lo que escribe el paso al terminar:",
        "All {count} checks pass. What the step writes when it ends:",
    ),
    "command": T("make ejercicio PASO={step}", "make exercise STEP={step}"),
}
